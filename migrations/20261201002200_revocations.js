// @ts-check
/**
 * Revoked JWT access tokens and grants (storage/revocations.ts). A JWT access token is never
 * stored, so revoking one records its `jti` until its `exp`; ending a grant records its id until
 * the last access token it may have issued has expired. `audiences` are the resources those
 * tokens were minted for (the revocation feed lists an entry only to clients of one of them;
 * NULL: to every resource service). The feed pages by (`xid`, `id`): `xid` is the writing
 * transaction, so an entry whose transaction commits late is never skipped by a cursor
 * (docs/storage.md#the-revocation-feed).
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.createTable('revocations', (table) => {
    table.bigIncrements('id').primary();
    table.text('kind').notNullable();
    table.text('value').notNullable();
    table.specificType('audiences', 'text[]');
    table.timestamp('expires_at', { useTz: true }).notNullable();
    table.timestamp('revoked_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.specificType('xid', 'xid8').notNullable().defaultTo(knex.raw('pg_current_xact_id()'));
  });
  await knex.raw(`ALTER TABLE revocations ADD CONSTRAINT revocations_kind CHECK (kind IN ('jti', 'grant'))`);
  await knex.raw('CREATE INDEX revocations_value ON revocations (value, kind)');
  await knex.raw('CREATE INDEX revocations_feed ON revocations (xid, id)');
  await knex.raw('CREATE INDEX revocations_expires_at ON revocations (expires_at)');
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('revocations');
}
