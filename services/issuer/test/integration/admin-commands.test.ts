import { describe, expect, it } from '@jest/globals';

import { runAdminCommand, type AdminContext } from '../../src/admin/commands.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { backends } from '../support/backends.js';
import { recordQueries, storageSuite } from '../support/storage.js';

/** A real argon2id hasher that notes how many transactions had begun when each hash started. */
class WatchedHasher extends PasswordHasher {
  readonly beganAtHash: number[] = [];
  constructor(private readonly began: () => number) {
    super();
  }

  override hash(password: string): Promise<string> {
    this.beganAtHash.push(this.began());
    return super.hash(password);
  }
}

describe.each(backends)('admin commands ($name)', (backend) => {
  const suite = storageSuite(backend);

  it('hashes a new password before its transaction opens, so no transaction waits for argon2id', async () => {
    const { knex } = suite.database;
    const recorded = recordQueries(knex, (sql) => /^(BEGIN|begin)/u.test(sql.trim()));
    const hasher = new WatchedHasher(() => recorded.statements.length);
    const context: AdminContext = {
      db: knex,
      hasher,
      keys: () => {
        throw new Error('no key command runs here');
      },
      notifications: () => Promise.resolve(false),
      actor: 'cli',
    };
    try {
      await runAdminCommand(context, 'users.create', { username: 'hashed-first', password: 'correct horse battery' });
      await runAdminCommand(context, 'users.set-password', { username: 'hashed-first', password: 'another long passphrase' });
      // both hashes ran while no transaction was open; each command then ran in one
      expect(hasher.beganAtHash).toEqual([0, 1]);
      expect(recorded.statements).toHaveLength(2);
    } finally {
      recorded.stop();
    }
  });
});
