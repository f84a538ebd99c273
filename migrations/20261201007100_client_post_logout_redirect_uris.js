// @ts-check
/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
 *
 * `clients.post_logout_redirect_uris`: where `/session/end` may send the browser back to once it
 * has ended the user's session at the issuer (`sigil clients create --post-logout-redirect-uri`),
 * matched exactly as `redirect_uris` are; `[]` for every client until then, which keeps the
 * browser on Sigil's own signed-out page.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.jsonb('post_logout_redirect_uris').notNullable().defaultTo('[]');
  });
}

/**
 * Going back forgets every client's post-logout redirect URIs: logout ends on Sigil's
 * signed-out page again.
 * @param {import('knex').Knex} knex
 */
export async function down(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('post_logout_redirect_uris');
  });
}
