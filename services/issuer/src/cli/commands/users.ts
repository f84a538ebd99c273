import type { Command } from 'commander';

import { printing, tableOf, example } from '../output.js';
import { CliError } from '../run-command.js';
import { collect, runChecked, type CliContext } from './context.js';

function addCreateCommand(users: Command, context: CliContext): void {
  printing(
    users
      .command('create')
      .description('create a user; the password is read from standard input').addHelpText('after', example('printf %s "$PASSWORD" | sigil users create --username alice --password-stdin --role admin --email alice@example.com'))
      .requiredOption('--username <username>', 'unique, case-insensitively')
      .option('--password-stdin', 'read the password from standard input (the only way to give it)')
      .option('--role <role>', 'role carried in the user\'s tokens (repeatable)', collect, [])
      .option('--email <email>', 'email address (the email claim)'),
    async (options) => {
      if (options['passwordStdin'] !== true) {
        throw new CliError('the password is read from standard input: pass --password-stdin', 2);
      }
      const input = { username: options['username'], password: await context.password(), roles: options['role'], email: options['email'] };
      return runChecked(context, 'users.create', input, 'user');
    },
    (r) => `created user ${String(r['username'])} (${String(r['id'])})`,
  );
}

export function addUsersCommands(program: Command, context: CliContext): void {
  const users = program.command('users').description('people who sign in').addHelpText('after', example('sigil users list'));
  addCreateCommand(users, context);
  printing(
    users.command('list').description('list users').addHelpText('after', example('sigil users list')),
    () => context.database('users.list', {}),
    tableOf('users', ['id', 'username', 'email', 'roles', 'disabled']),
  );
  printing(
    users.command('set-roles').description('replace a user\'s roles (none given: no roles)').addHelpText('after', example('sigil users set-roles alice admin ops')).argument('<username>').argument('[roles...]'),
    (_options, username: string, roles: string[]) =>
      runChecked(context, 'users.set-roles', { username, roles }),
    (r) => `${String(r['username'])}: ${(r['roles'] as string[]).join(' ') || '(no roles)'}`,
  );
  printing(
    users
      .command('disable')
      .description('stop a user from signing in (existing tokens run out; refresh stops)').addHelpText('after', example('sigil users disable alice'))
      .argument('<username>')
      .option('--enable', 'allow sign-in again instead'),
    (options, username: string) =>
      runChecked(context, 'users.disable', { username, disabled: options['enable'] !== true }),
    (r) => `${String(r['username'])}: ${r['disabled'] === true ? 'disabled' : 'enabled'}`,
  );
  printing(
    users.command('show').description('show one user').addHelpText('after', example('sigil users show alice')).argument('<username>'),
    (_options, username: string) => runChecked(context, 'users.show', { username }),
    (r) =>
      [
        ['id', r['id']],
        ['username', r['username']],
        ['email', r['email'] ?? ''],
        ['roles', (r['roles'] as string[]).join(' ') || '(no roles)'],
        ['disabled', r['disabled']],
        ['created_at', r['created_at']],
      ]
        .map(([label, value]) => `${String(label).padEnd(10)}  ${String(value)}`)
        .join('\n'),
  );
  printing(
    users
      .command('set-password')
      .description('give a user a new password, read from standard input; revokes its sessions and refresh tokens').addHelpText('after', example('printf %s "$PASSWORD" | sigil users set-password alice --password-stdin'))
      .argument('<username>')
      .option('--password-stdin', 'read the password from standard input (the only way to give it)'),
    async (options, username: string) => {
      if (options['passwordStdin'] !== true) {
        throw new CliError('the password is read from standard input: pass --password-stdin', 2);
      }
      return runChecked(context, 'users.set-password', { username, password: await context.password() });
    },
    (r) => `new password for ${String(r['username'])}; its sessions and refresh tokens are revoked`,
  );
  printing(
    users.command('delete').description('delete a user, revoking its sessions and refresh tokens (its audit events stay)').addHelpText('after', example('sigil users delete alice')).argument('<username>'),
    (_options, username: string) => runChecked(context, 'users.delete', { username }),
    (r) => `deleted user ${String(r['username'])} (${String(r['id'])})`,
  );
}
