import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import lockfile from 'proper-lockfile';

/** Thrown when another process owns an embedded data directory. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
  readonly code = 'ERR_DATA_DIR_IN_USE';
}

/** A lock whose holder cannot be checked (another machine, say) is stale once its mtime is this old. */
const STALE_MS = 10_000;
/** The holder refreshes the lock's mtime this often. */
const REFRESH_MS = STALE_MS / 2;
/** proper-lockfile never judges our lock stale itself: every removal goes through `acquire`'s checks. */
const NEVER_STALE_MS = Number.MAX_SAFE_INTEGER;

/** The lock (proper-lockfile's directory), its holder's identity, and the short-lived mutex every acquisition holds. */
const LOCK = 'sigil.lock';
const OWNER = 'sigil.lock.owner';
const ACQUIRE = 'sigil.lock.acquire';

/**
 * Who holds the lock. `bootId` and `pidNamespace` say whether `pid` means the same process
 * here (same boot, same pid namespace: not another container on a shared volume);
 * `startTime` (clock ticks after boot) tells a reused pid from the holder.
 */
interface Holder {
  readonly pid: number;
  readonly hostname: string;
  readonly bootId?: string;
  readonly pidNamespace?: string;
  readonly startTime?: string;
  readonly token: string;
}

/**
 * Creates `dir` (mode 0700) when missing and tightens an existing one to 0700:
 * it holds the embedded database, cookie keys and the admin socket.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
}

async function readOrUndefined(read: () => Promise<string>): Promise<string | undefined> {
  try {
    return (await read()).trim();
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (the process's start, in clock ticks after boot); the name before it may hold spaces or parentheses. */
async function startTimeOf(pid: number): Promise<string | undefined> {
  const stat = await readOrUndefined(() => fs.readFile(`/proc/${pid}/stat`, 'utf8'));
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

async function thisProcess(): Promise<Holder> {
  return {
    pid: process.pid,
    hostname: os.hostname(),
    bootId: await readOrUndefined(() => fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')),
    pidNamespace: await readOrUndefined(() => fs.readlink('/proc/self/ns/pid')),
    startTime: await startTimeOf(process.pid),
    token: randomBytes(16).toString('hex'),
  };
}

async function readHolder(dir: string): Promise<Holder | undefined> {
  const text = await readOrUndefined(() => fs.readFile(path.join(dir, OWNER), 'utf8'));
  try {
    const holder = JSON.parse(text ?? '') as Partial<Holder>;
    return typeof holder.pid === 'number' && typeof holder.hostname === 'string' && typeof holder.token === 'string' ? (holder as Holder) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `holder` is a process we can see, and it is gone (a pid that is free, or taken by a process started later). */
async function isGone(holder: Holder, self: Holder): Promise<boolean | undefined> {
  const sameSpace = holder.hostname === self.hostname && holder.bootId === self.bootId && holder.pidNamespace === self.pidNamespace;
  if (!sameSpace) return undefined;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: alive, another user's
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
  return holder.startTime !== undefined && (await startTimeOf(holder.pid)) !== holder.startTime;
}

/** A held lock may be taken over when its holder is gone or, when that cannot be told (another machine), its mtime is stale. */
async function holderIsGone(dir: string, self: Holder): Promise<boolean> {
  let mtime: number;
  try {
    mtime = (await fs.stat(path.join(dir, LOCK))).mtimeMs;
  } catch {
    return true;
  }
  const holder = await readHolder(dir);
  const gone = holder === undefined ? undefined : await isGone(holder, self);
  return gone ?? mtime < Date.now() - STALE_MS;
}

/** Takes the lock (an atomic mkdir) and writes its holder beside it; a held lock is ELOCKED. */
async function take(dir: string, self: Holder, onCompromised: (error: Error) => void): Promise<() => Promise<void>> {
  const unlock = await lockfile.lock(dir, { lockfilePath: path.join(dir, LOCK), stale: NEVER_STALE_MS, update: REFRESH_MS, onCompromised });
  const owner = path.join(dir, OWNER);
  const written = `${owner}.${self.token}`;
  await fs.writeFile(written, JSON.stringify(self), { mode: 0o600 });
  await fs.rename(written, owner);
  return async () => {
    if ((await readHolder(dir))?.token === self.token) await fs.rm(owner, { force: true });
    await unlock();
  };
}

/** Runs `step` holding the acquisition mutex (one starter at a time decides and takes over; a crashed one's goes stale after 2 s). */
async function whileAcquiring<T>(dir: string, step: () => Promise<T>): Promise<T> {
  const mutex = path.join(dir, ACQUIRE);
  const release = await lockfile.lock(mutex, {
    lockfilePath: mutex,
    realpath: false,
    stale: 2000,
    retries: { retries: 40, factor: 1, minTimeout: 100, maxTimeout: 100 },
    onCompromised: () => undefined,
  });
  try {
    return await step();
  } finally {
    await release();
  }
}

function inUse(dir: string): DataDirInUseError {
  return new DataDirInUseError(
    `the embedded database in ${dir} is in use by another Sigil process; ` + 'run one issuer per DATA_DIR (use DATABASE_URL for several replicas)',
  );
}

/**
 * Takes exclusive ownership of an embedded data directory. PGlite has no inter-process lock,
 * so every process that opens the embedded database holds this first. A lock whose holder is
 * gone (killed, crashed) is taken over at once; one whose holder cannot be checked, after 10 s
 * without a refresh.
 *
 * @returns a function that releases the lock
 * @throws DataDirInUseError when a live process holds it
 */
export async function lockDataDir(dir: string, onCompromised: (error: Error) => void): Promise<() => Promise<void>> {
  await ensurePrivateDir(dir);
  const self = await thisProcess();
  const attempt = () => take(dir, self, onCompromised);
  const held = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ELOCKED';
  return whileAcquiring(dir, async () => {
    try {
      return await attempt();
    } catch (error) {
      if (!held(error)) throw error;
    }
    if (!(await holderIsGone(dir, self))) throw inUse(dir);
    await fs.rm(path.join(dir, OWNER), { force: true });
    await fs.rm(path.join(dir, LOCK), { recursive: true, force: true });
    return attempt().catch((error: unknown) => {
      throw held(error) ? inUse(dir) : error;
    });
  });
}
