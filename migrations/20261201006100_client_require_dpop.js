// @ts-check
/**
 * A client may be required to prove possession of a key on every token request
 * (`sigil clients create --require-dpop`, RFC 9449 §5.2 `dpop_bound_access_tokens`): the
 * issuer then refuses its token requests without a DPoP proof, so that every token it gets is
 * bound to its key.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.boolean('require_dpop').notNullable().defaultTo(false);
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('require_dpop');
  });
}
