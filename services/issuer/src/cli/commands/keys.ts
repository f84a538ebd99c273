import path from 'node:path';

import type { Command } from 'commander';

import { printing, tableOf, example } from '../output.js';
import type { CliContext } from './context.js';

export function addKeysCommands(program: Command, { keys: run }: CliContext): void {
  const keys = program.command('keys').description('signing key lifecycle (KEY_STORE: the files in KEYS_DIR, or the database)').addHelpText('after', example('sigil keys list'));
  printing(
    keys.command('list').description('list signing keys and their states').addHelpText('after', example('sigil keys list --json')),
    () => run('keys.list', {}),
    tableOf('keys', ['kid', 'state', 'alg', 'created_at', 'activated_at', 'retired_at', 'may_sign_from']),
  );
  printing(
    keys
      .command('generate')
      .description('add a "next" key: published in the JWKS now, signing after a rotation at least KEY_PUBLISH_LEAD later (the first key is "current")').addHelpText('after', example('sigil keys generate')),
    () => run('keys.generate', {}),
    (r) => `generated key ${String(r['kid'])} (state ${String(r['state'])}${r['may_sign_from'] === undefined ? '' : `; may sign from ${String(r['may_sign_from'])}`})`,
  );
  printing(
    keys
      .command('rotate')
      .description('next → current, current → retired, and a new next; refused while the next key has been published for less than KEY_PUBLISH_LEAD').addHelpText('after', example('sigil keys rotate'))
      .option('--force', 'promote the next key even if verifiers may not have fetched it yet (tokens it signs may be refused for a while)'),
    (options) => run('keys.rotate', { force: options['force'] === true }),
    (r) => [`current: ${String(r['current'])}`, `retired: ${String(r['retired'] ?? '(none)')}`, `next:    ${String(r['next'])}`].join('\n'),
  );
  printing(
    keys.command('retire').description('retire a next key (the current key is replaced by rotate)').addHelpText('after', example('sigil keys retire NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')).argument('<kid>', 'the key id'),
    (_options, kid: string) => run('keys.retire', { kid }),
    (r) => `retired ${String(r['kid'])}`,
  );
  printing(
    keys
      .command('import')
      .description('move the keys of a file store (a KEYS_DIR) into the database key store (KEY_STORE=database)').addHelpText('after', example('KEY_STORE=database sigil keys import --from-dir /var/lib/sigil/keys'))
      .requiredOption('--from-dir <dir>', 'the directory of key files'),
    (options) => run('keys.import', { from_dir: path.resolve(String(options['fromDir'])) }),
    (r) => [`imported: ${(r['imported'] as string[]).join(', ') || '(none)'}`, `skipped (already there): ${(r['skipped'] as string[]).join(', ') || '(none)'}`].join('\n'),
  );
  printing(
    keys.command('reencrypt').description('re-encrypt every key of the database key store with the first KEYS_ENCRYPTION_KEY').addHelpText('after', example('sigil keys reencrypt')),
    () => run('keys.reencrypt', {}),
    (r) => `re-encrypted ${String(r['reencrypted'])} of ${String(r['total'])} key(s) with the first KEYS_ENCRYPTION_KEY`,
  );
}
