import { describe, expect, it } from '@jest/globals';
import type { Command } from 'commander';

import type { CliContext } from '../../src/cli/commands/context.js';
import { buildProgram, protectKids } from '../../src/cli/main.js';

/** Thrown where a command would open the configuration, the database or the key store: its flags and arguments were all taken. */
class Reached extends Error {
  constructor(readonly target: string) {
    super(`reached ${target}`);
  }
}

/** A context that runs nothing: every way out of the CLI stops at `Reached`; the password is a good one. */
const context: CliContext = {
  config: () => {
    throw new Reached('config');
  },
  database: (name) => Promise.reject(new Reached(name)),
  keys: (name) => Promise.reject(new Reached(name)),
  password: () => Promise.resolve('correct horse battery staple'),
};

/** Every command under `command` (itself included), by its words after `sigil`. */
function commandsOf(command: Command, words: string[] = []): { words: string[]; command: Command }[] {
  return [{ words, command }, ...command.commands.flatMap((sub) => commandsOf(sub, [...words, sub.name()]))];
}

/** What `sigil <words> --help` prints. */
function helpOf(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (chunk) => (text += chunk) });
  command.outputHelp();
  return text;
}

/** The argv of an example's `sigil …` (after a pipe into it and any environment assignments), as a shell would split it. */
function argvOf(line: string): string[] {
  const invocation = line.slice(line.lastIndexOf('| ') + 1).trim();
  const words = [...invocation.matchAll(/"([^"]*)"|(\S+)/gu)].map((match) => match[1] ?? match[2] ?? '');
  const start = words.indexOf('sigil');
  expect(words.slice(0, start).every((word) => /^[A-Z_]+=\S*$/u.test(word))).toBe(true);
  return words.slice(start + 1);
}

const commands = commandsOf(buildProgram(context));

describe('sigil --help', () => {
  it('covers every command of the CLI', () => {
    expect(commands.map(({ words }) => words.join(' '))).toEqual(expect.arrayContaining(['', 'clients', 'clients create', 'users set-password', 'api-keys revoke', 'keys import', 'audit list', 'doctor', 'migrate']));
    expect(commands.length).toBeGreaterThan(30);
  });

  it.each(commands.map(({ words, command }) => [words.join(' ') || '(sigil)', words, command] as const))('%s: ends with an Example section of one command line', (_name, words, command) => {
    const help = helpOf(command);
    const match = /\nExample:\n {2}\$ (?<line>[^\n]+)\n+$/u.exec(help);
    expect(match?.groups?.['line']).toEqual(expect.stringContaining('sigil '));
    // a command's own example runs that command; a group's, one of its commands
    expect(argvOf(String(match?.groups?.['line'])).slice(0, words.length)).toEqual(words);
  });

  it.each(commands.filter(({ command }) => command.commands.length === 0).map(({ words, command }) => [words.join(' '), command] as const))(
    '%s: its example passes every check of its flags, arguments and input, up to opening the database',
    async (_name, command) => {
      const line = /\$ (?<line>[^\n]+)\n+$/u.exec(helpOf(command))?.groups?.['line'] ?? '';
      const run = buildProgram(context).parseAsync(protectKids(argvOf(line)), { from: 'user' });
      await expect(run).rejects.toBeInstanceOf(Reached);
    },
  );
});
