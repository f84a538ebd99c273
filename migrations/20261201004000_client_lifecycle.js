// @ts-check
/**
 * A client's lifecycle (`sigil clients disable|enable|rotate-secret`): `disabled_at` is set
 * while it is disabled (the engine then finds no such client); after a secret rotation
 * `previous_secret_hash` (the SHA-256 digest of the secret it replaced) is accepted until
 * `previous_secret_expires_at`, and never after. A rotation without a grace period stores no
 * previous digest. `updated_at` already exists (see the clients migration).
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.timestamp('disabled_at', { useTz: true });
    table.timestamp('secret_rotated_at', { useTz: true });
    table.text('previous_secret_hash');
    table.timestamp('previous_secret_expires_at', { useTz: true });
  });
  await knex.raw(
    'ALTER TABLE clients ADD CONSTRAINT clients_previous_secret_complete CHECK ((previous_secret_hash IS NULL) = (previous_secret_expires_at IS NULL) AND (previous_secret_hash IS NULL OR NOT public))',
  );
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.raw('ALTER TABLE clients DROP CONSTRAINT IF EXISTS clients_previous_secret_complete');
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('previous_secret_expires_at');
    table.dropColumn('previous_secret_hash');
    table.dropColumn('secret_rotated_at');
    table.dropColumn('disabled_at');
  });
}
