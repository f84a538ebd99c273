// @ts-check
/**
 * How a confidential client authenticates (`sigil clients create --auth …`): `auth` is
 * `client_secret_basic` or `client_secret_post` (that one way of presenting its secret only),
 * `private_key_jwt` (RFC 7523 §2.2: a JWT signed with one of its keys), or NULL (either secret
 * method: what every client did before). A `private_key_jwt` client has its public keys, either
 * inline (`jwks`, a JWK Set) or where it publishes them (`jwks_uri`), exactly one of the two, and
 * never a secret (no digest, no previous digest). A public client has none of them.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('clients', (table) => {
    table.text('auth');
    table.jsonb('jwks');
    table.text('jwks_uri');
  });
  await knex.raw(`ALTER TABLE clients ADD CONSTRAINT clients_auth_method CHECK (auth IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt'))`);
  await knex.raw('ALTER TABLE clients ADD CONSTRAINT clients_auth_public CHECK (auth IS NULL OR NOT public)');
  await knex.raw(
    `ALTER TABLE clients ADD CONSTRAINT clients_auth_keys CHECK (
       (auth IS NOT DISTINCT FROM 'private_key_jwt') = ((jwks IS NULL) <> (jwks_uri IS NULL))
       AND (jwks IS NULL OR jwks_uri IS NULL))`,
  );
  // replaces "a confidential client has a secret": one that authenticates with its keys has none,
  // and one switched back to a secret method has none until `clients rotate-secret`
  await knex.raw('ALTER TABLE clients DROP CONSTRAINT clients_secret_matches_type');
  await knex.raw(
    `ALTER TABLE clients ADD CONSTRAINT clients_secret_matches_auth CHECK (
       (secret_hash IS NULL AND previous_secret_hash IS NULL) OR (NOT public AND auth IS DISTINCT FROM 'private_key_jwt'))`,
  );
}

/**
 * Going back leaves every `private_key_jwt` client, and every confidential client switched back
 * from it that has no secret yet, without a way to authenticate: each is given the digest of a
 * secret no one knows (the old schema requires one) and `private_key_jwt` clients are disabled,
 * so that nothing mistakes them for working secret clients.
 * @param {import('knex').Knex} knex
 */
export async function down(knex) {
  await knex('clients').where({ auth: 'private_key_jwt' }).whereNull('disabled_at').update({ disabled_at: knex.fn.now() });
  for (const constraint of ['clients_secret_matches_auth', 'clients_auth_keys', 'clients_auth_public', 'clients_auth_method']) {
    await knex.raw(`ALTER TABLE clients DROP CONSTRAINT IF EXISTS ${constraint}`);
  }
  await knex.raw('UPDATE clients SET secret_hash = md5(random()::text) || md5(random()::text) WHERE NOT public AND secret_hash IS NULL');
  await knex.raw('ALTER TABLE clients ADD CONSTRAINT clients_secret_matches_type CHECK ((public AND secret_hash IS NULL) OR (NOT public AND secret_hash IS NOT NULL))');
  await knex.schema.alterTable('clients', (table) => {
    table.dropColumn('jwks_uri');
    table.dropColumn('jwks');
    table.dropColumn('auth');
  });
}
