import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { z } from 'zod';

import { ensurePrivateDir } from './storage/embedded-lock.js';

const fileSchema = z.object({ keys: z.array(z.string().min(32)).min(1) });

/**
 * Cookie signing keys: `COOKIE_KEYS` when set; otherwise one key generated on first start
 * and kept in `DATA_DIR/cookie-keys.json` (mode 0600), so sessions survive a restart.
 * Replicas must share the same keys, or a session made by one is unknown to another (docs/engine.md#cookie-keys), so production requires `COOKIE_KEYS`.
 */
export async function loadCookieKeys(configured: readonly string[] | undefined, dataDir: string): Promise<string[]> {
  if (configured !== undefined) return [...configured];
  await ensurePrivateDir(dataDir);
  const file = path.join(dataDir, 'cookie-keys.json');
  try {
    await fs.writeFile(file, `${JSON.stringify({ keys: [randomBytes(32).toString('base64url')] })}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const parsed = fileSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a valid cookie key file; remove it to generate a new key`);
  return parsed.data.keys;
}
