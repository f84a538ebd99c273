// @ts-check
/**
 * Used `jti`s of client assertions and DPoP proofs (storage/replays.ts) get a table of their
 * own. As rows of `oidc_payloads` each one wrote a JSON payload and five index entries, three of
 * them NULL; every `private_key_jwt` or DPoP token request writes one, so that was most of such a
 * request's cost (docs/storage.md#replay-detection-one-conditional-insert). Here a row is the
 * 32-byte SHA-256 of the client id and the `jti` and its expiry: one B-tree entry, and a BRIN
 * index for the sweep (rows arrive in about the order they expire, which is what BRIN summarises
 * for almost nothing). Unexpired rows move over, so no assertion or proof accepted before the
 * upgrade can be replayed after it.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.raw('CREATE TABLE replay_detections (id bytea PRIMARY KEY, expires_at timestamptz NOT NULL)');
  await knex.raw('CREATE INDEX replay_detections_expires_at ON replay_detections USING brin (expires_at)');
  // oidc_payloads ids were the base64url (unpadded) of the same digest
  await knex.raw(`
    INSERT INTO replay_detections (id, expires_at)
    SELECT decode(translate(id, '-_', '+/') || '=', 'base64'), expires_at FROM oidc_payloads
    WHERE type = 'ReplayDetection' AND expires_at > CURRENT_TIMESTAMP AND length(id) = 43
    ON CONFLICT (id) DO NOTHING`);
  await knex.raw(`DELETE FROM oidc_payloads WHERE type = 'ReplayDetection'`);
}

/**
 * Going back moves unexpired rows to `oidc_payloads` again, as the earlier code wrote them.
 * @param {import('knex').Knex} knex
 */
export async function down(knex) {
  await knex.raw(`
    INSERT INTO oidc_payloads (type, id, payload, expires_at)
    SELECT 'ReplayDetection', rtrim(translate(encode(id, 'base64'), '+/', '-_'), '='), '{}'::jsonb, expires_at FROM replay_detections
    WHERE expires_at > CURRENT_TIMESTAMP
    ON CONFLICT (type, id) DO NOTHING`);
  await knex.raw('DROP TABLE replay_detections');
}
