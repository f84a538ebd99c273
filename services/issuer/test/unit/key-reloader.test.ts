import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { startKeyReloader } from '../../src/keys/key-reloader.js';
import { ensureSigningKey, signingOrder } from '../../src/keys/key-store.js';
import { createLogger } from '../../src/logger.js';
import { eventually } from '../support/http.js';

describe('key reloader', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it('when a key file has a bad mode, the failure is logged once as one line (no stack) however often it polls, and its recovery once', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sigil-reloader-'));
    stops.push(() => fs.rm(dir, { recursive: true, force: true }));
    const keys = signingOrder(await ensureSigningKey(dir));
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    const stop = startKeyReloader(keys, { dir, intervalMs: 10, retentionSeconds: 3600, onChange: () => undefined, logger });
    stops.unshift(stop);
    const [file] = (await fs.readdir(dir)).filter((name) => name.endsWith('.json'));
    await fs.chmod(path.join(dir, file ?? ''), 0o644);

    const failures = () => lines.filter((line) => line.includes('key reload failed'));
    await eventually(async () => (failures().length > 0 ? true : undefined), 5000, 10);
    // about twenty more polls
    const counted = lines.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(failures()).toHaveLength(1);
    expect(lines.length).toBe(counted);
    const failure = JSON.parse(failures()[0] ?? '{}') as Record<string, unknown>;
    expect(failure['reason']).toMatch(/readable by other users/u);
    expect(failure).not.toHaveProperty('err');
    expect(failures()[0]).not.toMatch(/\\n\s+at /u);

    await fs.chmod(path.join(dir, file ?? ''), 0o600);
    await eventually(async () => (lines.some((line) => line.includes('key reload works again')) ? true : undefined), 5000, 10);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lines.filter((line) => line.includes('key reload works again'))).toHaveLength(1);
  });
});
