// @ts-check
/**
 * OAuth clients. Secrets are stored only as SHA-256 digests (hex); public clients have none.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.createTable('clients', (table) => {
    table.text('id').primary();
    table.text('name').notNullable();
    table.text('secret_hash');
    table.jsonb('grant_types').notNullable();
    table.jsonb('scopes').notNullable();
    table.jsonb('roles').notNullable();
    table.jsonb('redirect_uris').notNullable();
    table.jsonb('resources').notNullable();
    table.boolean('public').notNullable().defaultTo(false);
    table.boolean('first_party').notNullable().defaultTo(false);
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    'ALTER TABLE clients ADD CONSTRAINT clients_secret_matches_type CHECK ((public AND secret_hash IS NULL) OR (NOT public AND secret_hash IS NOT NULL))',
  );
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('clients');
}
