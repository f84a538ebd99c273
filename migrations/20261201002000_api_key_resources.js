// @ts-check
/**
 * API keys name the services that accept them (their resources, RFC 8707 audiences). Keys made
 * before this migration get an empty list: every service refuses them until an administrator
 * gives them resources (`sigil api-keys update <id> --resource URI …`).
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('api_keys', (table) => {
    table.jsonb('resources').notNullable().defaultTo(knex.raw(`'[]'::jsonb`));
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('api_keys', (table) => {
    table.dropColumn('resources');
  });
}
