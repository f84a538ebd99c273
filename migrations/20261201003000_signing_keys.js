// @ts-check
/**
 * Signing keys of the database key store (KEY_STORE=database, storage/signing-keys.ts). `id` is
 * the key's `kid` (its RFC 7638 thumbprint); `public_jwk` holds the public members, in clear;
 * `sealed_private` the private members, encrypted with AES-256-GCM under KEYS_ENCRYPTION_KEY
 * (keys/encryption.ts): a private member never reaches the database in clear. At most one key is
 * `current` and one `next` (partial unique indexes). Every change notifies the `sigil_changes`
 * channel like `clients`, so that every replica reloads its keys at once.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.createTable('signing_keys', (table) => {
    table.text('id').primary();
    table.text('state').notNullable();
    table.jsonb('public_jwk').notNullable();
    table.text('sealed_private').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable();
    table.timestamp('activated_at', { useTz: true });
    table.timestamp('retired_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_state CHECK (state IN ('next', 'current', 'retired'))`);
  await knex.raw(`CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((true)) WHERE state = 'current'`);
  await knex.raw(`CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys ((true)) WHERE state = 'next'`);
  await knex.raw(
    'CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys FOR EACH ROW EXECUTE FUNCTION sigil_notify_row_change()',
  );
  await knex.raw(
    'CREATE TRIGGER signing_keys_truncated AFTER TRUNCATE ON signing_keys FOR EACH STATEMENT EXECUTE FUNCTION sigil_notify_table_change()',
  );
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('signing_keys');
}
