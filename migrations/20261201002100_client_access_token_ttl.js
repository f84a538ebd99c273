// @ts-check
/**
 * A client may have its own access-token lifetime (`sigil clients create --access-token-ttl`);
 * NULL means the issuer's ACCESS_TOKEN_TTL.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.integer('access_token_ttl');
  });
  await knex.raw('ALTER TABLE clients ADD CONSTRAINT clients_access_token_ttl_range CHECK (access_token_ttl BETWEEN 60 AND 86400)');
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('access_token_ttl');
  });
}
