import fs from 'node:fs/promises';
import path from 'node:path';

import lockfile from 'proper-lockfile';

/** Thrown when another process owns an embedded data directory. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
  readonly code = 'ERR_DATA_DIR_IN_USE';
}

const STALE_MS = 10_000;

/**
 * Creates `dir` (mode 0700) when missing and tightens an existing one to 0700:
 * it holds the embedded database, cookie keys and the admin socket.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
}

/**
 * Takes exclusive ownership of an embedded data directory. PGlite has no
 * inter-process lock, so every process that opens the embedded database holds this
 * first. A crashed owner's lock turns stale after 10 s.
 *
 * @returns a function that releases the lock
 * @throws DataDirInUseError when a live process holds it
 */
export async function lockDataDir(
  dir: string,
  onCompromised: (error: Error) => void,
): Promise<() => Promise<void>> {
  await ensurePrivateDir(dir);
  try {
    return await lockfile.lock(dir, {
      lockfilePath: path.join(dir, 'sigil.lock'),
      stale: STALE_MS,
      onCompromised,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new DataDirInUseError(
        `the embedded database in ${dir} is in use by another Sigil process; ` +
          'run one issuer per DATA_DIR (use DATABASE_URL for several replicas)',
      );
    }
    throw error;
  }
}
