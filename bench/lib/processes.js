// @ts-check
/* global AbortSignal -- Node's global, missing from the shared ESLint globals */
/** Child processes for the bench: started in their own process group, logs to files, stopped for sure. */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * @typedef {object} Child
 * @property {string} name
 * @property {import('node:child_process').ChildProcess} process
 * @property {string} logFile
 * @property {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} exited
 * @property {boolean} stopping
 */

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise(
    /** @param {(port: number) => void} resolve */
    (resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const port = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolve(port));
      });
    },
  );
}

/**
 * Starts `node <script>` in its own process group (so a cluster primary and its workers are
 * stopped together), stdout and stderr appended to `<logDir>/<name>.log`.
 * @param {string} name
 * @param {string} script absolute path
 * @param {Record<string, string>} env added to this process's environment
 * @param {string} logDir
 * @param {string[]} [nodeArgs] options for node itself (cluster workers inherit them)
 * @returns {Child}
 */
export function startChild(name, script, env, logDir, nodeArgs = []) {
  const logFile = path.join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise(
    /** @param {(value: { code: number | null, signal: NodeJS.Signals | null }) => void} resolve */
    (resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: -1, signal: null }));
    },
  );
  return { name, process: child, logFile, exited, stopping: false };
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * SIGTERM to the child's process group, SIGKILL after `graceMs` if anything is left.
 * @param {Child} child
 * @param {number} [graceMs]
 */
export async function stopChild(child, graceMs = 5000) {
  child.stopping = true;
  const pid = child.process.pid;
  if (pid === undefined) return;
  const signalGroup = (/** @type {NodeJS.Signals} */ signal) => {
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false; // the group is gone
    }
  };
  if (!signalGroup('SIGTERM')) return;
  const done = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)]);
  // the leader may be gone while cluster workers linger: the group signal reaches them too
  await sleep(done ? 100 : 0);
  signalGroup('SIGKILL');
}

/**
 * The last lines of a child's log, for failure reports.
 * @param {Child} child
 * @param {number} [lines]
 */
export function logTail(child, lines = 20) {
  try {
    return readFileSync(child.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Printed by oidc-provider at start-up (Node 20, and the bare engine's defaults): not a problem of the run. */
const KNOWN_LINES = [
  /^oidc-provider WARNING: Unsupported runtime\./u,
  // the bare-engine baseline runs the engine with its defaults on purpose
  /^oidc-provider WARNING: a quick start development-only in-memory adapter is used/u,
  /^oidc-provider NOTICE: default ttl\.ClientCredentials function called/u,
];

/**
 * Lines a child logged at warn level or above (pino JSON `level` ≥ 40), and any non-JSON
 * lines (a crash, a runtime warning): what a workload may have triggered. Known start-up
 * lines are counted apart.
 * @param {Child} child
 * @returns {{ count: number, samples: string[], known: number }}
 */
export function loggedProblems(child) {
  let text;
  try {
    text = readFileSync(child.logFile, 'utf8');
  } catch {
    return { count: 0, samples: [], known: 0 };
  }
  /** @type {string[]} */
  const problems = [];
  let known = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (KNOWN_LINES.some((pattern) => pattern.test(line))) {
      known += 1;
      continue;
    }
    try {
      const entry = JSON.parse(line);
      if (typeof entry.level === 'number' && entry.level >= 40) problems.push(line);
    } catch {
      problems.push(line);
    }
  }
  return { count: problems.length, samples: problems.slice(0, 5).map((line) => line.slice(0, 400)), known };
}

/**
 * Polls `url` until it answers 2xx; fails early when `child` exits.
 * @param {string} url
 * @param {Child} child
 * @param {number} [timeoutMs]
 */
export async function waitForOk(url, child, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  /** @type {string} */
  let last;
  for (;;) {
    if (exited) throw new Error(`${child.name} exited before ${url} was ready:\n${logTail(child)}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
      last = `${response.status} ${(await response.text()).slice(0, 200)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last}):\n${logTail(child)}`);
    await sleep(200);
  }
}

/**
 * Runs `node <script> ...args` to completion, with a timeout; resolves to its stdout.
 * @param {string} script
 * @param {string[]} args
 * @param {Record<string, string>} env
 * @param {{ stdin?: string, timeoutMs?: number }} [options]
 * @returns {Promise<string>}
 */
export function runNode(script, args, env, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    /** @type {Buffer[]} */
    const out = [];
    /** @type {Buffer[]} */
    const err = [];
    child.stdout.on('data', (chunk) => out.push(chunk));
    child.stderr.on('data', (chunk) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(stdout);
      else reject(new Error(`node ${path.basename(script)} ${args.join(' ')} failed (${signal ?? code}): ${Buffer.concat(err).toString('utf8').trim() || stdout.trim()}`));
    });
    child.stdin.end(options.stdin ?? '');
  });
}
