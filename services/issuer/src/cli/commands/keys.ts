import type { Command } from 'commander';

import { generateKey, readKeys, retireKey, rotateKeys, type StoredKey } from '../../keys/key-store.js';
import { printing, tableOf } from '../output.js';
import type { CliContext } from './context.js';

/** A key as the CLI shows it: never the key material. */
function keyView(key: StoredKey) {
  return {
    kid: key.jwk.kid,
    state: key.state,
    alg: key.jwk.alg,
    created_at: key.createdAt,
    ...(key.retiredAt === undefined ? {} : { retired_at: key.retiredAt }),
  };
}

export function addKeysCommands(program: Command, { config }: CliContext): void {
  const keys = program.command('keys').description('signing key lifecycle');
  printing(
    keys.command('list').description('list signing keys and their states'),
    async () => ({ keys: (await readKeys(config().keysDir)).map(keyView) }),
    tableOf('keys', ['kid', 'state', 'alg', 'created_at', 'retired_at']),
  );
  printing(
    keys
      .command('generate')
      .description('add a "next" key: published in the JWKS now, signing after the next rotation (the first key is "current")'),
    async () => keyView(await generateKey(config().keysDir)),
    (r) => `generated key ${String(r['kid'])} (state ${String(r['state'])})`,
  );
  printing(
    keys.command('rotate').description('next → current, current → retired, and a new next; running issuers follow within seconds'),
    async () => {
      const { current, retired, next } = await rotateKeys(config().keysDir);
      return { current: current.jwk.kid, retired: retired?.jwk.kid ?? null, next: next.jwk.kid };
    },
    (r) => [`current: ${String(r['current'])}`, `retired: ${String(r['retired'] ?? '(none)')}`, `next:    ${String(r['next'])}`].join('\n'),
  );
  printing(
    keys.command('retire').description('retire a next key (the current key is replaced by rotate)').argument('<kid>', 'the key id'),
    async (_options, kid: string) => {
      const key = await retireKey(config().keysDir, kid);
      return { kid: key.jwk.kid, state: key.state, retired_at: key.retiredAt };
    },
    (r) => `retired ${String(r['kid'])}`,
  );
}
