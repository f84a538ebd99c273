import type { Command } from 'commander';

/** What a command prints: one JSON object with --json, else a few lines for people. */
export type Output = Record<string, unknown>;

/** The parsed options of a command; every command that prints has --json. */
export type Options = Record<string, unknown> & { json?: boolean };

/** Renders a result for people. */
export type Human = (result: Output) => string;

/**
 * Control characters (C0, DEL, C1), line and paragraph separators and bidirectional overrides:
 * a terminal would act on them (an ESC sequence in a user or client name), or they would
 * disguise a line. JSON.stringify escapes C0 only.
 */
function unprintable(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029 || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069);
}

/** `text` with every character a terminal could act on written as a visible `\uXXXX` escape. */
export function escapeControls(text: string): string {
  let escaped = '';
  let from = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (!unprintable(code)) continue;
    escaped += `${text.slice(from, i)}\\u${code.toString(16).padStart(4, '0')}`;
    from = i + 1;
  }
  return from === 0 ? text : escaped + text.slice(from);
}

/** Every string inside `value`, escaped (the result's own values, not the renderer's line breaks). */
function escapedStrings(value: unknown): unknown {
  if (typeof value === 'string') return escapeControls(value);
  if (Array.isArray(value)) return value.map(escapedStrings);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([key, member]) => [escapeControls(key), escapedStrings(member)]));
  }
  return value;
}

/**
 * Writes a result; nothing it carries reaches the terminal raw. JSON keeps its values (the
 * escapes JSON.stringify does not make, DEL, C1 and the separators, are JSON escapes too).
 */
export function print(result: Output, json: boolean | undefined, human: Human): void {
  process.stdout.write(json === true ? `${escapeControls(JSON.stringify(result))}\n` : `${human(escapedStrings(result) as Output)}\n`);
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

/**
 * The end of a command's --help (`addHelpText('after', …)`): an example, one whole command line
 * that works as it stands (test/unit/cli-help.test.ts runs each through the command's own checks).
 */
export function example(line: string): string {
  return `\nExample:\n  $ ${line}\n`;
}
