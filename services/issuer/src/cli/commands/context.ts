import type { z } from 'zod';

import { adminCommands, type AdminCommandName } from '../../admin/commands.js';
import type { Config } from '../../config.js';
import type { KeyCommandName } from '../../keys/commands.js';
import { describeCliInput, type CheckedCommand } from '../input-names.js';
import type { Output } from '../output.js';
import { CliError } from '../run-command.js';

/** What the command modules need from the CLI around them. */
export interface CliContext {
  /** The configuration, read from the environment the first time it is asked for. */
  readonly config: () => Config;
  /** Runs an admin command where the data lives (see run-command.ts). */
  readonly database: (name: AdminCommandName, input: unknown) => Promise<Output>;
  /** Runs a `keys.*` command on the configured key store (see run-command.ts). */
  readonly keys: (name: KeyCommandName, input: unknown) => Promise<Output>;
  /** The password piped to standard input, for `--password-stdin` (see run-command.ts). */
  readonly password: () => Promise<string>;
}

/** For a repeatable option: each use adds one value. */
export const collect = (value: string, previous: string[]) => [...previous, value];

/** Validates locally first, so bad arguments never reach the database (exit 2), and are named by their flags. */
function validated(name: CheckedCommand, input: unknown): unknown {
  const parsed = (adminCommands[name].input as z.ZodType<unknown>).safeParse(input);
  if (!parsed.success) throw new CliError(describeCliInput(name, input, parsed.error), 2);
  return parsed.data;
}

/**
 * Checks `input` against the command's own input schema (as the admin socket will) before anything is
 * opened, runs the command, and leaves the field `omit` out of its result: the created
 * record, which the CLI does not print.
 */
export async function runChecked(
  { database }: CliContext,
  name: CheckedCommand,
  input: unknown,
  omit?: string,
): Promise<Output> {
  const result = await database(name, validated(name, input));
  if (omit === undefined) return result;
  const { [omit]: _record, ...shown } = result;
  return shown;
}
