import type { Command } from 'commander';

/** What a command prints: one JSON object with --json, else a few lines for people. */
export type Output = Record<string, unknown>;

/** The parsed options of a command; every command that prints has --json. */
export type Options = Record<string, unknown> & { json?: boolean };

/** Renders a result for people. */
export type Human = (result: Output) => string;

export function print(result: Output, json: boolean | undefined, human: Human): void {
  process.stdout.write(json === true ? `${JSON.stringify(result)}\n` : `${human(result)}\n`);
}

/** Rows as aligned columns; a list cell is joined with commas, a missing one left blank. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (value: unknown) => (Array.isArray(value) ? value.join(',') : String(value ?? ''));
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(columns), ...rows.map((row) => line(columns.map((column) => cell(row[column]))))].join('\n');
}

/** A human rendering that is a table of the list under `key`. */
export function tableOf(key: string, columns: string[]): Human {
  return (result) => table(result[key] as Output[], columns);
}

/**
 * Gives `command` its --json flag and an action that prints what `run` returns.
 * `run` receives the options, then the command's arguments as Commander parsed them.
 * Call it last in the chain, so that --json is listed after the command's own options.
 */
export function printing<Args extends unknown[]>(
  command: Command,
  run: (options: Options, ...args: Args) => Promise<Output>,
  human: Human,
): Command {
  return command.option('--json', 'print one JSON object').action(async (...received: unknown[]) => {
    // Commander calls an action with the arguments, then the options, then the command
    const options = received.at(-2) as Options;
    const args = received.slice(0, -2) as Args;
    print(await run(options, ...args), options.json, human);
  });
}
