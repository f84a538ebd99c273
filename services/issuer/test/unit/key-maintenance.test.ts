import fs from 'node:fs/promises';

import { afterEach, describe, expect, it } from '@jest/globals';

import { FileKeyStore, keyFile, readKeys } from '../../src/keys/file-store.js';
import type { StoredKey } from '../../src/keys/key-store.js';
import { ensureSigningKey, type KeyPolicy } from '../../src/keys/lifecycle.js';
import { startKeyMaintenance, type KeyMaintenance } from '../../src/keys/maintenance.js';
import { createLogger } from '../../src/logger.js';
import { temporaryDir } from '../support/backends.js';
import { eventually } from '../support/http.js';

describe('key maintenance', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  const directory = async () => {
    const dir = await temporaryDir('maintenance');
    stops.push(() => fs.rm(dir, { recursive: true, force: true }));
    return dir;
  };
  const collecting = () => {
    const lines: string[] = [];
    return { lines, logger: createLogger('info', { write: (line: string) => void lines.push(line) }) };
  };
  const manual: KeyPolicy = { publishLead: 3600, rotationInterval: undefined, retention: 3600 };

  it('when a key file gets a bad mode, the failure is logged once as one line (no stack) however often it looks, and its recovery once', async () => {
    const dir = await directory();
    const store = new FileKeyStore(dir, { pollMs: 10 });
    const keys = await ensureSigningKey(store);
    const { lines, logger } = collecting();
    const maintenance = startKeyMaintenance(keys, { store, policy: manual, onChange: () => undefined, logger, tickMs: 10 });
    stops.unshift(() => maintenance.stop());
    const file = keyFile(dir, keys[0]?.jwk.kid ?? '');
    // a change the reload must read: a second key, then the bad mode
    await fs.chmod(file, 0o644);
    await fs.utimes(file, new Date(), new Date(Date.now() + 5000));

    const failures = () => lines.filter((line) => line.includes('failed; the loaded keys stay in use'));
    await eventually(async () => (failures().length > 0 ? true : undefined), 5000, 10);
    const counted = lines.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(failures()).toHaveLength(1);
    expect(lines.length).toBe(counted);
    const failure = JSON.parse(failures()[0] ?? '{}') as Record<string, unknown>;
    expect(failure['reason']).toMatch(/readable by other users/u);
    expect(failure).not.toHaveProperty('err');
    expect(failures()[0]).not.toMatch(/\\n\s+at /u);

    await fs.chmod(file, 0o600);
    await fs.utimes(file, new Date(), new Date(Date.now() + 10_000));
    await eventually(async () => (lines.some((line) => line.includes('key reload works again')) ? true : undefined), 5000, 10);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lines.filter((line) => line.includes('key reload works again'))).toHaveLength(1);
  });

  it('when three replicas share a key directory and a rotation falls due, each step is taken exactly once and every replica follows', async () => {
    const dir = await directory();
    const seed = new FileKeyStore(dir);
    const [first] = await ensureSigningKey(seed);
    // an interval of 10 s with a lead of 4 s: publish at 6 s, promote at 10 s, on a clock the test moves
    const policy: KeyPolicy = { publishLead: 4, rotationInterval: 10, retention: 3600 };
    const start = Date.parse(first?.activatedAt ?? '');
    let clock = start;
    const { lines, logger } = collecting();
    const seen: (readonly StoredKey[])[] = [[], [], []];
    const replicas: KeyMaintenance[] = [0, 1, 2].map((index) =>
      startKeyMaintenance([first as StoredKey], {
        store: new FileKeyStore(dir, { pollMs: 20 }),
        policy,
        onChange: (keys) => {
          seen[index] = keys;
        },
        logger,
        tickMs: 5,
        now: () => new Date(clock),
      }),
    );
    stops.unshift(async () => {
      for (const replica of replicas) await replica.stop();
    });
    const steps = () => lines.filter((line) => line.includes('signing key rotation step')).map((line) => (JSON.parse(line) as { step: string }).step);

    clock = start + 6000;
    await eventually(async () => (steps().length === 1 ? true : undefined), 10_000, 10).catch((error: unknown) => {
      throw new Error(`${String(error)}: ${lines.join('')}`);
    });
    await eventually(async () => (seen.every((keys) => keys.some((key) => key.state === 'next')) ? true : undefined), 10_000, 10);
    clock = start + 10_000;
    await eventually(async () => (steps().length === 2 ? true : undefined), 10_000, 10);
    await eventually(async () => (replicas.every((replica) => replica.keys()[0]?.jwk.kid !== first?.jwk.kid) ? true : undefined), 10_000, 10);
    // many more ticks of every replica: nothing else is due
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(steps()).toEqual(['publish', 'promote']);

    const states = (await readKeys(dir)).map((key) => key.state).sort();
    expect(states).toEqual(['current', 'retired']);
    expect(replicas.map((replica) => replica.keys().map((key) => key.state))).toEqual([['current', 'retired'], ['current', 'retired'], ['current', 'retired']]);
    expect((await fs.readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});
