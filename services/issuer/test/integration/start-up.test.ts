import fs from 'node:fs/promises';
import net from 'node:net';

import { describe, expect, it } from '@jest/globals';

import { backends, databaseSuite } from '../support/backends.js';
import { testEnv } from '../support/issuer.js';
import { runIssuerProcess, spawnIssuer } from '../support/process.js';

const exists = (file: string) => fs.stat(file).then(() => true, () => false);

describe.each(backends)('start-up failures ($name)', (backend) => {
  // the first test checks that a refused start writes nothing: DATA_DIR must not exist before it
  const suite = databaseSuite(backend, { nothingOnDisk: true });

  it('when TRUST_PROXY is not a valid setting, the issuer exits 2 with one line naming it and writes nothing', async () => {
    const result = await runIssuerProcess({ ...testEnv(suite.database), PORT: '0', TRUST_PROXY: 'maybe' });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      'sigil: invalid configuration: TRUST_PROXY must be true, false, a hop count, or a comma-separated list of addresses, subnets, loopback, linklocal or uniquelocal (got "maybe")',
    ]);
    expect(await exists(suite.database.dataDir)).toBe(false);
    expect(await exists(suite.database.keysDir)).toBe(false);
  });

  it('when the port is in use, the issuer exits 1 with one line saying so, and no stack', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      // one process: how a cluster's primary stops its other workers is the cluster suite's
      const result = await runIssuerProcess({ ...testEnv(suite.database), PORT: String(port), WEB_CONCURRENCY: '1' });
      expect(result.code).toBe(1);
      const lines = result.stderr.trimEnd().split('\n').filter((line) => !line.includes('Unsupported runtime') && line.trim() !== '');
      expect(lines.at(-1)).toBe(`sigil: port ${port} is in use by another process (PORT)`);
      expect(`${result.stdout}${result.stderr}`).not.toMatch(/\n\s+at /u);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('from start to stop, everything the issuer writes is one JSON object per line (the engine\'s own notices included), and nothing goes to stderr', async () => {
    const issuer = spawnIssuer({ ...testEnv(suite.database), PORT: '0', WEB_CONCURRENCY: '1', LOG_LEVEL: 'info' });
    await issuer.waitForOutput(/sigil issuer listening/u);
    issuer.child.kill('SIGTERM');
    const result = await issuer.exited;
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trimEnd().split('\n');
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(lines.length).toBeGreaterThan(1);
  });
});
