// @ts-check
/**
 * Revoked clients (storage/revocations.ts `recordRevokedClient`): disabling or deleting a client
 * records `kind = 'client'`, `value` its id, and in `revoked_at` (which the revocations migration
 * already has) the moment up to which its access tokens are revoked: every token whose
 * `client_id` is that client and whose `iat` is at or before it, client credentials tokens
 * included (they have no grant to end). `expires_at` is the longest access token lifetime after
 * that moment; `audiences` are the client's registered resources. Only the kind's check changes.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.raw('ALTER TABLE revocations DROP CONSTRAINT revocations_kind');
  await knex.raw(`ALTER TABLE revocations ADD CONSTRAINT revocations_kind CHECK (kind IN ('jti', 'grant', 'client'))`);
}

/**
 * Going back forgets every revoked client: the tokens they cover are accepted again until they expire.
 * @param {import('knex').Knex} knex
 */
export async function down(knex) {
  await knex('revocations').where({ kind: 'client' }).delete();
  await knex.raw('ALTER TABLE revocations DROP CONSTRAINT revocations_kind');
  await knex.raw(`ALTER TABLE revocations ADD CONSTRAINT revocations_kind CHECK (kind IN ('jti', 'grant'))`);
}
