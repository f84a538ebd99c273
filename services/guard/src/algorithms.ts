/** The asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037): never `none`, never an HMAC (RFC 8725 §3.1–3.2). */
const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/u;

/**
 * A configured algorithm list, checked: non-empty and asymmetric only, so that no option can
 * let `none` or an HMAC keyed with a public key through.
 * @throws TypeError naming the refused algorithm, or the empty list, and the option
 */
export function asymmetricAlgorithms(algorithms: readonly string[], option: string): string[] {
  const refused = algorithms.find((alg) => !ASYMMETRIC.test(alg));
  if (algorithms.length === 0 || refused !== undefined) {
    throw new TypeError(`${option} must be asymmetric JWS algorithms (refused: ${refused ?? 'empty list'})`);
  }
  return [...algorithms];
}
