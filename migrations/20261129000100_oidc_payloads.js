// @ts-check
/**
 * Storage for oidc-provider models (sessions, interactions, codes, refresh tokens, grants…).
 * Each row is one model instance; the columns beside `payload` are the ones the adapter
 * looks rows up by.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.createTable('oidc_payloads', (table) => {
    table.text('type').notNullable();
    table.text('id').notNullable();
    table.jsonb('payload').notNullable();
    table.text('grant_id');
    table.text('uid');
    table.text('user_code');
    table.timestamp('expires_at', { useTz: true });
    table.timestamp('consumed_at', { useTz: true });
    table.primary(['type', 'id']);
    table.index(['grant_id'], 'oidc_payloads_grant_id_idx');
    table.index(['uid'], 'oidc_payloads_uid_idx');
    table.index(['user_code'], 'oidc_payloads_user_code_idx');
    table.index(['expires_at'], 'oidc_payloads_expires_at_idx');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('oidc_payloads');
}
