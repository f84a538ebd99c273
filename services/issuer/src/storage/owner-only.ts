import { chmod, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Permission bits of group and others. */
const GROUP_AND_OTHERS = 0o077;

/**
 * Makes every file and directory under `dir` (and `dir` itself) accessible to its owner only,
 * keeping the owner's bits. PGlite writes the files of a new database with mode 0666 whatever
 * the process umask; a database holds client secrets' digests, refresh tokens and users.
 */
export async function restrictToOwner(dir: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const paths = [dir, ...entries.filter((entry) => entry.isFile() || entry.isDirectory()).map((entry) => path.join(entry.parentPath, entry.name))];
  for (const item of paths) {
    const { mode } = await stat(item);
    if ((mode & GROUP_AND_OTHERS) !== 0) await chmod(item, mode & 0o7700);
  }
}

/**
 * From now on this process creates files for its owner only: the embedded database keeps
 * creating files (relations, WAL segments) as long as it runs. Key files, cookie keys and the
 * admin socket set their own modes, which this umask never widens.
 */
export function createOwnerOnlyFiles(): void {
  process.umask(GROUP_AND_OTHERS);
}
