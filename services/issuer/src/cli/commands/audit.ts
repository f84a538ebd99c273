import type { Command } from 'commander';

import { printing, tableOf, example } from '../output.js';
import { runChecked, type CliContext } from './context.js';

/** A --limit as the number the schema checks; anything else is left for it to refuse. */
function limitValue(value: unknown): unknown {
  return typeof value === 'string' && /^[0-9]{1,7}$/u.test(value) ? Number(value) : value;
}

/** `sigil audit list`: sign-in and admin events, newest first. */
export function addAuditCommands(program: Command, context: CliContext): void {
  const audit = program.command('audit').description('the audit trail: sign-in and administration events').addHelpText('after', example('sigil audit list --type admin. --limit 20'));
  printing(
    audit
      .command('list')
      .description('list events, newest first').addHelpText('after', example('sigil audit list --since 2026-12-01 --type login. --limit 50'))
      .option('--since <time>', 'only events at or after this ISO 8601 date or time (2026-12-01, 2026-12-01T09:30:00Z)')
      .option('--type <type>', 'only events of this type (admin.user.deleted), or of types beginning with a prefix ending in "." (admin., login.)')
      .option('--limit <n>', 'at most this many events, 1 to 1000 (default 100)')
      .option('--cursor <cursor>', 'the next_cursor of the previous page: the events older than it'),
    (options) => runChecked(context, 'audit.list', { since: options['since'], type: options['type'], limit: limitValue(options['limit']), cursor: options['cursor'] }),
    tableOf('events', ['id', 'at', 'type', 'actor', 'object', 'username', 'client_id', 'ip']),
  );
}
