import fs from 'node:fs/promises';
import path from 'node:path';

import type { Command } from 'commander';
import { z } from 'zod';

import { dataFactsSchema, runDoctor, type DoctorKey, type KeyFileModes } from '../../domain/doctor.js';
import { print, table, type Options, example } from '../output.js';
import { CliError } from '../run-command.js';
import type { CliContext } from './context.js';

/** The key files' and KEYS_DIR's permission bits (the file key store: one `*.json` per key). */
export async function keyFileModes(dir: string): Promise<KeyFileModes> {
  let directory: number;
  try {
    directory = (await fs.stat(dir)).mode & 0o777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { directory: undefined, files: [] };
    throw error;
  }
  const names = (await fs.readdir(dir)).filter((name) => name.endsWith('.json')).sort();
  const files = await Promise.all(names.map(async (name) => ({ name, mode: (await fs.stat(path.join(dir, name))).mode & 0o777 })));
  return { directory, files };
}

const keyViewSchema = z.object({
  keys: z.array(
    z.object({
      kid: z.string(),
      state: z.enum(['next', 'current', 'retired']),
      created_at: z.string(),
      activated_at: z.string().optional(),
      retired_at: z.string().optional(),
    }),
  ),
});

/** The configured key store's keys as the doctor sees them (`keys list`, through the same path). */
async function storeKeys(keys: CliContext['keys']): Promise<DoctorKey[]> {
  const listed = keyViewSchema.parse(await keys('keys.list', {}));
  return listed.keys.map((key) => ({ kid: key.kid, state: key.state, createdAt: key.created_at, activatedAt: key.activated_at, retiredAt: key.retired_at }));
}

/** `sigil doctor`: every check, printed; exit 1 when any fails. */
export function addDoctorCommand(program: Command, { config, database, keys }: CliContext): void {
  program
    .command('doctor')
    .description('audit this deployment against RFC 9700 and OWASP ASVS 5.0 (exit 1 when a check fails)').addHelpText('after', example('sigil doctor'))
    .option('--json', 'print one JSON object')
    .action(async (options: Options) => {
      const loaded = config();
      const report = await runDoctor({
        config: loaded,
        now: new Date(),
        keys: () => storeKeys(keys),
        keyFileModes: () => keyFileModes(loaded.keysDir),
        data: async () => dataFactsSchema.parse(await database('doctor.facts', {})),
      });
      print({ ...report }, options.json, (result) => table(result['checks'] as Record<string, unknown>[], ['status', 'id', 'section', 'message']));
      const failed = report.checks.filter((check) => check.status === 'fail').length;
      if (failed > 0) throw new CliError(`${failed} check(s) failed`, 1);
    });
}
