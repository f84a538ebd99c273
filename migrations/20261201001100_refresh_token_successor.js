// @ts-check
/**
 * A rotated refresh token remembers its successor for the retry window
 * (REFRESH_TOKEN_RETRY_WINDOW): a retry of a lost refresh response is answered with that same
 * successor, never a second one. The sweeper clears it, with the rest of the spent token's
 * payload, once the window has passed (docs/storage.md#spent-refresh-tokens).
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('oidc_payloads', (table) => {
    table.text('successor_id');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('oidc_payloads', (table) => {
    table.dropColumn('successor_id');
  });
}
