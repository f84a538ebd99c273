// @ts-check
/**
 * Administration joins the audit trail: every admin change (CLI, embedded admin socket, HTTP
 * admin API) is an `auth_events` row of type `admin.…` beside the sign-in events. `actor` is who
 * made it (`cli`, or the admin client's id); `object` is what it changed (a client id, a user id,
 * an API key id, a kid). Sign-in events leave both NULL. `detail` never holds a secret.
 * `audit list` reads newest first, by `id` (storage/audit.ts).
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('auth_events', (table) => {
    table.text('actor');
    table.text('object');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('auth_events', (table) => {
    table.dropColumn('object');
    table.dropColumn('actor');
  });
}
