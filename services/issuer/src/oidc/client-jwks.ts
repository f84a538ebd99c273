import { LRUCache } from 'lru-cache';
import type { AdapterPayload, JWKS } from 'oidc-provider';
import type Provider from 'oidc-provider';

import { isFetchableJwksUri } from '../domain/client-keys.js';

/**
 * The key sets `private_key_jwt` clients publish at their `jwks_uri` (RFC 7591 §2), fetched by
 * Sigil for the engine and for its own routes: with a timeout, without following redirects,
 * up to a size, only from a URL a client may register (https, or http on loopback), and at
 * most once per URL per refetch floor in each process whatever the outcome, so that assertions
 * with unknown kids (anyone can send them) never make the issuer hammer a client's server.
 */

export interface ClientJwksOptions {
  /** Least time between two requests for one URL, in ms (default 30 s): a failure is kept as long as a key set. */
  readonly refetchFloorMs?: number;
  /** Gives up on a request (connecting, headers and body) after this many ms (default 3 s). */
  readonly timeoutMs?: number;
  /** Largest key set document, in bytes (default 64 KiB). */
  readonly maxBytes?: number;
  /** Most URLs remembered (default 10,000); an answer is forgotten after an hour at most. */
  readonly maxUrls?: number;
  /** Called after each request that went out (for metrics and tests). */
  readonly onRequest?: (outcome: 'ok' | 'failed') => void;
}

/** What one request for a URL got: the document and its status, or why there is none. */
interface Answer {
  readonly at: number;
  readonly status?: number;
  readonly body?: Buffer;
  readonly failure?: string;
}

export const CLIENT_JWKS_REFETCH_FLOOR_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 3000;
const DEFAULT_MAX_BYTES = 64 * 1024;

/** Thrown when a key set cannot be had (the engine turns it into invalid_client). */
export class ClientJwksError extends Error {
  override name = 'ClientJwksError';
}

/** The body of `response`, at most `limit` bytes (a larger one is refused unread past the limit). */
async function limitedBody(response: Response, limit: number): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > limit) {
    await response.body?.cancel();
    throw new ClientJwksError(`the key set is larger than ${limit} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let received = 0;
  if (response.body !== null) {
    for await (const chunk of response.body) {
      received += chunk.length;
      if (received > limit) {
        await response.body.cancel();
        throw new ClientJwksError(`the key set is larger than ${limit} bytes`);
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

/**
 * One process's view of every client's jwks_uri. The engine reaches it through its `fetch`
 * option (configuration.ts) and asks only when a client's keys lack the assertion's kid (or
 * fail to verify it) and its copy is older than the floor ({@link boundKeySetFreshness});
 * Sigil's own verification of assertions asks through {@link keySet}.
 *
 * @example
 * const jwks = new ClientJwksFetcher();
 * const { keys } = await jwks.keySet('https://client.example.com/jwks.json');
 */
export class ClientJwksFetcher {
  readonly #floorMs: number;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #onRequest: ClientJwksOptions['onRequest'];
  readonly #answers: LRUCache<string, Answer>;
  readonly #inFlight = new Map<string, Promise<Answer>>();

  constructor(options: ClientJwksOptions = {}) {
    this.#floorMs = options.refetchFloorMs ?? CLIENT_JWKS_REFETCH_FLOOR_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.#onRequest = options.onRequest;
    this.#answers = new LRUCache<string, Answer>({ max: options.maxUrls ?? 10_000, ttl: 60 * 60_000 });
  }

  /** The refetch floor, in whole seconds (at least 1). */
  get floorSeconds(): number {
    return Math.max(1, Math.ceil(this.#floorMs / 1000));
  }

  /**
   * The engine's `fetch` (its only outgoing requests are client key sets): the last answer
   * for the URL if it is younger than the floor, else a new one. The engine's own timeout and
   * connection options are replaced by Sigil's.
   */
  async engineFetch(url: string | URL): Promise<Response> {
    const answer = await this.#answer(String(url), true);
    if (answer.failure !== undefined) throw new ClientJwksError(answer.failure);
    // no caching headers: how long the engine keeps the keys is Sigil's floor (boundKeySetFreshness)
    return new Response(new Uint8Array(answer.body ?? Buffer.alloc(0)), { status: answer.status ?? 502, headers: { 'content-type': 'application/json' } });
  }

  /**
   * The key set published at `url`: the last one fetched, or (with `refetch`, when it lacked the
   * kid wanted) a new one unless the last request is younger than the floor.
   * @throws ClientJwksError when there is none to be had
   */
  async keySet(url: string, { refetch = false }: { readonly refetch?: boolean } = {}): Promise<JWKS> {
    const answer = await this.#answer(url, refetch);
    if (answer.failure !== undefined) throw new ClientJwksError(answer.failure);
    if (answer.status !== 200) throw new ClientJwksError(`the jwks_uri answered ${String(answer.status)}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse((answer.body ?? Buffer.alloc(0)).toString('utf8'));
    } catch {
      throw new ClientJwksError('the jwks_uri did not answer JSON');
    }
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'object' && key !== null && !Array.isArray(key))) {
      throw new ClientJwksError('the jwks_uri did not answer a JWK Set');
    }
    return { keys: keys as JWKS['keys'] };
  }

  /** The remembered answer for `url` (when `renew` is false, or it is younger than the floor), or a new request's, shared by concurrent callers. */
  #answer(url: string, renew: boolean): Promise<Answer> {
    const known = this.#answers.get(url);
    if (known !== undefined && (!renew || Date.now() - known.at < this.#floorMs)) return Promise.resolve(known);
    let pending = this.#inFlight.get(url);
    if (pending === undefined) {
      pending = this.#request(url).finally(() => this.#inFlight.delete(url));
      this.#inFlight.set(url, pending);
    }
    return pending;
  }

  async #request(url: string): Promise<Answer> {
    const at = Date.now();
    let answer: Answer;
    if (!isFetchableJwksUri(url)) {
      // registration refuses such a URL; this holds even for a row written around it
      answer = { at, failure: 'a jwks_uri must be https, or http on a loopback host' };
    } else {
      try {
        const response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(this.#timeoutMs) });
        answer = { at, status: response.status, body: await limitedBody(response, this.#maxBytes) };
      } catch (error) {
        answer = { at, failure: `the jwks_uri could not be fetched: ${error instanceof Error ? error.message : String(error)}` };
      }
      this.#onRequest?.(answer.failure === undefined && answer.status === 200 ? 'ok' : 'failed');
    }
    this.#answers.set(url, answer);
    return answer;
  }
}

/** An own slot on each of the engine's client key stores for the end of its freshness (epoch seconds). */
const FRESH_UNTIL = Symbol('sigil.freshUntil');

/**
 * The engine keeps each client object's jwks_uri keys "fresh" for at least 60 s after a
 * fetch, or longer when the answer's Cache-Control or Expires says so, and refuses an
 * assertion whose key is missing while they are fresh, without looking again
 * (`ClientKeyStore` in oidc-provider's `lib/models/client.js`). Sigil makes that freshness its
 * refetch floor, whatever the headers: a client's new key is found within `floorSeconds` of its
 * first use, and no key set is held longer than that against a missing kid. The store's class is
 * internal to the engine, so it is reached through a client object made for the purpose, and a
 * change in its shape stops the issuer at start rather than going unnoticed.
 */
export function boundKeySetFreshness(provider: Provider, floorSeconds: number): void {
  const probe = new (provider.Client as unknown as new (metadata: AdapterPayload) => { readonly asymmetricKeyStore?: object })({
    client_id: 'sigil-key-store-probe',
    token_endpoint_auth_method: 'none',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  });
  const prototype: unknown = probe.asymmetricKeyStore === undefined ? undefined : Object.getPrototypeOf(probe.asymmetricKeyStore);
  const shape = prototype as { fresh?: unknown; refresh?: unknown } | undefined;
  if (typeof shape?.fresh !== 'function' || typeof shape.refresh !== 'function' || Object.getOwnPropertyDescriptor(shape, 'freshUntil') !== undefined) {
    throw new Error('oidc-provider\'s client key store is not what Sigil expects (docs/engine.md#private_key_jwt-client-assertions): check the engine version');
  }
  Object.defineProperty(prototype, 'freshUntil', {
    configurable: true,
    get(this: Record<symbol, number | undefined>) {
      return this[FRESH_UNTIL];
    },
    // the engine sets it after every answer: its value (60 s or the headers') is replaced by the floor
    set(this: Record<symbol, number | undefined>) {
      this[FRESH_UNTIL] = Math.floor(Date.now() / 1000) + floorSeconds;
    },
  });
}
