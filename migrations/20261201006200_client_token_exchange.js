// @ts-check
/**
 * Token exchange (RFC 8693).
 *
 * `clients.may_exchange_for`: the resources a client with the token exchange grant may exchange
 * the tokens it is sent for into (`sigil clients create --may-exchange-for`); `[]` for every
 * client until then.
 *
 * `oidc_payloads.exchange_audiences` (grants only): the resources a token of the grant was
 * exchanged for, beyond the grant's own. When the grant ends, its revocation names them as
 * audiences too (storage/revocations.ts `recordEndedGrantsSql`), so the services those exchanged
 * tokens were sent to learn of it from the revocation feed. A column beside `payload`, not a
 * member of it: the engine rewrites a grant's payload whole when it saves it again.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.jsonb('may_exchange_for').notNullable().defaultTo('[]');
  });
  await knex.schema.alterTable('oidc_payloads', (table) => {
    table.jsonb('exchange_audiences');
  });
}

/**
 * Going back forgets every client's exchange targets and what was exchanged: tokens exchanged
 * before keep working until they expire, and the end of their grant is told only to the grant's
 * own resources.
 * @param {import('knex').Knex} knex
 */
export async function down(knex) {
  await knex.schema.alterTable('oidc_payloads', (table) => {
    table.dropColumn('exchange_audiences');
  });
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('may_exchange_for');
  });
}
