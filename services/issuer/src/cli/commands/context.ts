import type { z } from 'zod';

import { adminCommands, describeInputError, type AdminCommandName } from '../../admin/commands.js';
import type { Config } from '../../config.js';
import type { KeyCommandName } from '../../keys/commands.js';
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
}

/** For a repeatable option: each use adds one value. */
export const collect = (value: string, previous: string[]) => [...previous, value];

/** Validates locally first, so bad arguments never reach the database (exit 2). */
function validated<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new CliError(describeInputError(parsed.error), 2);
  return parsed.data;
}

/**
 * Checks `input` against the command's own input schema (as the admin socket will) before anything is
 * opened, runs the command, and leaves the field `omit` out of its result: the created
 * record, which the CLI does not print.
 */
export async function runChecked(
  { database }: CliContext,
  name: AdminCommandName,
  input: unknown,
  omit?: string,
): Promise<Output> {
  const result = await database(name, validated(adminCommands[name].input as z.ZodType<unknown>, input));
  if (omit === undefined) return result;
  const { [omit]: _record, ...shown } = result;
  return shown;
}
