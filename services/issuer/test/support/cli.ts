import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runToExit, type RunResult } from './process.js';

const SIGIL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/sigil.js');

export type CliResult = RunResult;

/** Runs the real `sigil` executable (the built CLI) as a separate process. */
export function sigil(args: string[], env: Record<string, string>, stdin?: string): Promise<CliResult> {
  return runToExit(process.execPath, [SIGIL, ...args], env, { stdin: stdin ?? '' });
}

/** Runs `sigil … --json` and parses its one JSON object, failing loudly otherwise. */
export async function sigilJson<T = Record<string, unknown>>(args: string[], env: Record<string, string>): Promise<T> {
  const result = await sigil([...args, '--json'], env);
  if (result.code !== 0) throw new Error(`sigil ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
