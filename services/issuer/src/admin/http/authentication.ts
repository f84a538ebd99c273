import { CredentialsMissing, InsufficientScope, InvalidToken, bearerToken } from '@sigil/guard';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';

import { publicJwk, type StoredKey } from '../../keys/key-store.js';
import { accessTokenWithdrawn, type WithdrawalSources } from '../../oidc/introspection.js';

/** Every admin operation, reads included. */
export const ADMIN_SCOPE = 'sigil:admin';
/** Reads only (GET). */
export const READ_SCOPE = 'sigil:read';
/** The scopes of the admin API's audience: the only ones its tokens carry (oidc/resource-scopes.ts). */
export const ADMIN_API_SCOPES: readonly string[] = [ADMIN_SCOPE, READ_SCOPE];

/** The admin API's resource URI (RFC 8707): the audience of its access tokens. */
export function adminAudience(issuer: string): string {
  return `${issuer}/admin`;
}

/** Who calls the admin API: an admin client, with what it may do now. */
export interface AdminCaller {
  /** The audit trail's actor. */
  readonly clientId: string;
  /** The token's scopes that the client is still registered for. */
  readonly scopes: ReadonlySet<string>;
}

/** What the issuer holds now about an admin client: what its tokens may still do. */
export interface AdminClientState {
  /** Every scope the client is registered for. */
  readonly scopes: readonly string[];
  /** The audiences it is registered for. */
  readonly resources: readonly string[];
}

/** JWS compact serialization (RFC 7515 §7.1). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/u;
/** Header parameters that could point at a key; the key comes only from the issuer's own set (RFC 8725 §3.10). */
const KEY_POINTERS = ['jku', 'jwk', 'x5u', 'x5c'] as const;
/** The issuer verifies what its own clock signed: a little leeway for its replicas' clocks. */
const CLOCK_TOLERANCE_S = 5;

export interface AdminTokenVerifierOptions {
  readonly issuer: string;
  /** The issuer's published keys now (current, next and retired). */
  readonly keys: () => readonly StoredKey[];
  /** Revocations and grants: a revoked token, an ended grant, a disabled client's earlier tokens are refused. */
  readonly withdrawals: WithdrawalSources;
  /**
   * The client as registered now; undefined when it is disabled or deleted. Its tokens stop
   * working at once when it is, and carry no more than it is still registered for.
   */
  readonly client: (clientId: string) => Promise<AdminClientState | undefined>;
}

/**
 * Verifies the admin API's access tokens: Sigil's own RFC 9068 JWTs for the audience
 * `<ISSUER>/admin`, checked as the guard checks a resource service's (signature by a published
 * key, RS256 only, `typ` `at+jwt`, `iss`, `aud`, `exp`), against the issuer's keys in memory,
 * and then — the admin API being the issuer — against its own state, on every request:
 *
 * - only a client's own token (client credentials, RFC 9068 §2.2: `sub` is the client id)
 *   administers: a token a person got through a client speaks for that person, and a person's
 *   rights are not the client's (a portal calls with its own credentials, and its users' rights
 *   are the portal's business);
 * - a revoked token or grant, and a client disabled or deleted, are refused;
 * - the token's scopes count only while the client is still registered for them and for the
 *   admin audience, so taking a scope away takes it from the tokens already issued.
 *
 * Refusals are the guard's errors, so the answers are the guard's (RFC 6750).
 */
export class AdminTokenVerifier {
  readonly #options: AdminTokenVerifierOptions;
  readonly #audience: string;
  #keySet: { readonly keys: readonly StoredKey[]; readonly resolve: JWTVerifyGetKey } | undefined;

  constructor(options: AdminTokenVerifierOptions) {
    this.#options = options;
    this.#audience = adminAudience(options.issuer);
  }

  /** The published keys as a jose key set, rebuilt when the issuer's keys change. */
  #resolver(): JWTVerifyGetKey {
    const keys = this.#options.keys();
    if (this.#keySet?.keys !== keys) this.#keySet = { keys, resolve: createLocalJWKSet({ keys: keys.map((key) => ({ ...publicJwk(key.jwk) })) }) };
    return this.#keySet.resolve;
  }

  /**
   * The caller an `Authorization` header speaks for.
   * @throws CredentialsMissing, InvalidToken (the guard's errors); a database error when the revocations cannot be read
   */
  async verify(authorization: string | undefined): Promise<AdminCaller> {
    const token = bearerToken(authorization);
    if (token === undefined) throw new CredentialsMissing('no bearer token');
    if (!COMPACT_JWS.test(token)) throw new InvalidToken('not a compact JWS');
    let payload;
    try {
      const header = decodeProtectedHeader(token);
      const pointer = KEY_POINTERS.find((name) => header[name] !== undefined);
      if (pointer !== undefined) throw new InvalidToken(`token header carries "${pointer}"`);
      ({ payload } = await jwtVerify(token, this.#resolver(), {
        issuer: this.#options.issuer,
        audience: this.#audience,
        algorithms: ['RS256'],
        typ: 'at+jwt',
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp', 'iat', 'sub', 'client_id', 'jti'],
      }));
    } catch (error) {
      if (error instanceof InvalidToken) throw error;
      const code = error instanceof errors.JOSEError ? error.code : 'ERR_UNKNOWN';
      throw new InvalidToken(`${code}: ${(error as Error).message}`, { cause: error });
    }
    // a sender-constrained token proves nothing without its proof, which this API does not take
    if (payload['cnf'] !== undefined) throw new InvalidToken('a DPoP-bound token is not accepted by the admin API');
    // one audience, this one (RFC 9068 §3: Sigil issues one per token); no token from the future
    if (Array.isArray(payload.aud) && payload.aud.length !== 1) throw new InvalidToken('an admin token has the admin API as its only audience');
    if (typeof payload.iat !== 'number' || payload.iat > Date.now() / 1000 + CLOCK_TOLERANCE_S) throw new InvalidToken('iat is in the future');
    const clientId = payload['client_id'];
    if (typeof clientId !== 'string') throw new InvalidToken('client_id is not a string');
    if (payload.sub !== clientId) throw new InvalidToken('the admin API takes client credentials tokens only, not a token issued to a person');
    if (await accessTokenWithdrawn(this.#options.withdrawals, payload)) throw new InvalidToken('token revoked');
    const client = await this.#options.client(clientId);
    if (client === undefined) throw new InvalidToken(`client ${clientId} is disabled or deleted`);
    if (!client.resources.includes(this.#audience)) throw new InvalidToken(`client ${clientId} is no longer registered for the admin API`);
    const scope = payload['scope'];
    const registered = new Set(client.scopes);
    return { clientId, scopes: new Set((typeof scope === 'string' ? scope.split(' ') : []).filter((name) => registered.has(name))) };
  }
}

/**
 * Refuses a caller whose scopes do not allow the operation: `sigil:admin` allows everything,
 * `sigil:read` reads (RFC 6750 §3.1 `insufficient_scope`, naming the scope that would do).
 */
export function authorize(caller: AdminCaller, reads: boolean): void {
  if (caller.scopes.has(ADMIN_SCOPE) || (reads && caller.scopes.has(READ_SCOPE))) return;
  const needed = reads ? READ_SCOPE : ADMIN_SCOPE;
  throw new InsufficientScope([needed], `token scopes: ${[...caller.scopes].join(' ') || '(none)'}`);
}
