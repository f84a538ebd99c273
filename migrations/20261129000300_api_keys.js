// @ts-check
/**
 * API keys. The key itself is `sgk_<id>_<secret>`; only the SHA-256 of the secret is stored.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.createTable('api_keys', (table) => {
    table.text('id').primary();
    table.text('name').notNullable();
    table.text('owner');
    table.text('secret_hash').notNullable();
    table.jsonb('scopes').notNullable();
    table.jsonb('roles').notNullable();
    table.timestamp('expires_at', { useTz: true });
    table.timestamp('last_used_at', { useTz: true });
    table.timestamp('revoked_at', { useTz: true });
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('api_keys');
}
