import type { Command } from 'commander';

import { printing, example } from '../output.js';
import type { CliContext } from './context.js';

export function addMigrateCommand(program: Command, { database }: CliContext): void {
  printing(
    program.command('migrate').description('apply pending migrations to the configured database').addHelpText('after', example('sigil migrate')),
    () => database('migrate', {}),
    (r) => {
      const applied = r['applied'] as string[];
      return applied.length === 0 ? 'database is up to date' : `applied: ${applied.join(', ')}`;
    },
  );
}
