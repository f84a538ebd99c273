import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/main.js');

export interface ExitedProcess {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A built issuer running as its own process, for tests that signal it while it serves. */
export interface IssuerProcess {
  readonly child: ChildProcess;
  /** Resolves when it has exited (code null when killed by a signal), with everything it wrote. */
  readonly exited: Promise<ExitedProcess>;
  /** What it has written to stdout so far. */
  stdout(): string;
  /** Resolves once stdout holds `count` matches of `pattern`; rejects after `timeoutMs` or if the process exits first. */
  waitForOutput(pattern: RegExp, count?: number, timeoutMs?: number): Promise<void>;
}

/** Starts the built issuer (`node dist/main.js`) with `env` (and PATH) as its whole environment. */
export function spawnIssuer(env: Record<string, string>): IssuerProcess {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let done = false;
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<ExitedProcess>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      done = true;
      resolve({ code, stdout, stderr });
    });
  });
  const waitForOutput = async (pattern: RegExp, count = 1, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
    while ((stdout.match(global) ?? []).length < count) {
      if (done || Date.now() > deadline) throw new Error(`the issuer did not print ${String(pattern)} ${count} time(s); stdout: ${stdout} stderr: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return { child, exited, stdout: () => stdout, waitForOutput };
}

/**
 * Runs the built issuer (`node dist/main.js`) as its own process and waits for it to exit,
 * killing it after `timeoutMs` (the result then has code null).
 */
export async function runIssuerProcess(env: Record<string, string>, timeoutMs = 30_000): Promise<ExitedProcess> {
  const running = spawnIssuer(env);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  try {
    return await running.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** What a process run to its end printed, and how it exited. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command` to its end with only PATH and `env` in its environment, `stdin` written to it,
 * and answers what it printed and its exit code.
 */
export function runToExit(command: string, args: readonly string[], env: Record<string, string>, { stdin = '', cwd }: { stdin?: string; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...(cwd === undefined ? {} : { cwd }), env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}
