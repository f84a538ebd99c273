import { VerifierUnavailable } from './errors.js';

/**
 * @example
 * ```ts
 * new RevocationFeed({ feedUri: 'http://localhost:4000/token/revocations', clientId, clientSecret, intervalMs: 10_000 });
 * ```
 */
export interface RevocationFeedOptions {
  /** The issuer's `GET /token/revocations`, or a function that finds it. */
  readonly feedUri: string | (() => Promise<string>);
  /** This service's own client (registered for its audience), which authenticates the polls. */
  readonly clientId: string;
  readonly clientSecret: string;
  /** Time between the end of one poll and the start of the next. Default 10 s. */
  readonly intervalMs?: number;
  /**
   * Keep trusting the last revocations read for this long while the feed cannot be read;
   * past it, tokens are refused as unverifiable (503) until a poll succeeds. Default 24 hours
   * (as the JWKS).
   */
  readonly staleIfErrorMs?: number;
  /** Timeout of one request. Default 5 s. */
  readonly timeoutMs?: number;
  /** Told of every failed poll (the guard logs it). */
  readonly onError?: (error: VerifierUnavailable) => void;
  /** The clock in milliseconds, for tests. */
  readonly now?: () => number;
}

/** The claims a revocation is matched on. */
export interface RevocableClaims {
  readonly jti?: unknown;
  readonly grant_id?: unknown;
  readonly client_id?: unknown;
  readonly iat?: unknown;
}

/** A revoked client: its tokens issued (`iat`, seconds) at or before `revokedAt` are revoked, until `until` (ms). */
interface ClientRevocation {
  readonly revokedAt: number;
  readonly until: number;
}

interface FeedPage {
  readonly revocations: readonly Record<string, unknown>[];
  readonly next_cursor: string;
  readonly has_more: boolean;
}

/** Pages read in one poll at most (a page holds up to 1000 entries): the rest waits for the next poll. */
const MAX_PAGES_PER_POLL = 50;
/** An entry is kept this long past its `expires_at`: the verifier accepts a token a little past `exp` (clock tolerance). */
const KEEP_PAST_EXPIRY_MS = 5 * 60_000;

function isPage(body: unknown): body is FeedPage {
  if (typeof body !== 'object' || body === null) return false;
  const page = body as Partial<Record<keyof FeedPage, unknown>>;
  return (
    Array.isArray(page.revocations) &&
    page.revocations.every((entry) => typeof entry === 'object' && entry !== null) &&
    typeof page.next_cursor === 'string' &&
    typeof page.has_more === 'boolean'
  );
}

/**
 * The issuer's revoked access tokens (`jti`), grants (`grant_id`) and clients (`client_id`, for
 * the tokens issued to them up to `revoked_at`), kept in memory and
 * brought up to date by polling the revocation feed every `intervalMs`, so that a request
 * pays a map look-up, never a call to the issuer. While the feed cannot be read the last list
 * keeps being used for `staleIfErrorMs` (stale-if-error, like {@link JwksCache}).
 *
 * @example
 * ```ts
 * const feed = new RevocationFeed({ feedUri, clientId, clientSecret });
 * feed.start();
 * if (feed.revoked(payload) !== false) await feed.load(); // then check again
 * ```
 */
export class RevocationFeed {
  readonly #options: Required<Omit<RevocationFeedOptions, 'onError' | 'feedUri'>> & Pick<RevocationFeedOptions, 'onError' | 'feedUri'>;
  readonly #authorization: string;
  readonly #jtis = new Map<string, number>();
  readonly #grants = new Map<string, number>();
  readonly #clients = new Map<string, ClientRevocation>();
  #cursor: string | undefined;
  #readAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #polls = 0;
  #failedPolls = 0;
  #succeededPolls = 0;

  constructor(options: RevocationFeedOptions) {
    this.#options = { intervalMs: 10_000, staleIfErrorMs: 24 * 3600_000, timeoutMs: 5000, now: Date.now, ...options };
    this.#authorization = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;
  }

  /** How many polls have been made (for monitoring and tests). */
  get pollCount(): number {
    return this.#polls;
  }

  /** How many polls failed (the feed unreachable or refusing); each poll may read several pages. */
  get failedPollCount(): number {
    return this.#failedPolls;
  }

  /** How many polls read the feed to its end. */
  get succeededPollCount(): number {
    return this.#succeededPolls;
  }

  /** How many revocations are held. */
  get size(): number {
    return this.#jtis.size + this.#grants.size + this.#clients.size;
  }

  /** Polls now and then every `intervalMs` until `stop()` (the timer never keeps the process alive). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Whether a token with these claims is revoked: `undefined` while that cannot be told (no
   * successful poll yet, or the last one older than `staleIfErrorMs`). Synchronous, for the
   * per-request path.
   */
  revoked(claims: RevocableClaims): boolean | undefined {
    const now = this.#options.now();
    if (now - this.#readAt > this.#options.staleIfErrorMs) return undefined;
    const { jti, grant_id: grantId, client_id: clientId } = claims;
    const until = (typeof jti === 'string' ? this.#jtis.get(jti) : undefined) ?? (typeof grantId === 'string' ? this.#grants.get(grantId) : undefined);
    if (until !== undefined && until > now) return true;
    const client = typeof clientId === 'string' ? this.#clients.get(clientId) : undefined;
    // a token without a numeric iat cannot show it was issued after the revocation
    return client !== undefined && client.until > now && !(typeof claims.iat === 'number' && claims.iat > client.revokedAt);
  }

  /**
   * Reads the feed now (sharing a poll already under way) unless the list is usable.
   * @throws VerifierUnavailable when it cannot be read and the list is not usable
   */
  async load(): Promise<void> {
    if (this.revoked({}) !== undefined) return;
    await this.poll();
    if (this.revoked({}) === undefined) throw new VerifierUnavailable('revocation feed unavailable');
  }

  /** One poll: every page since the last cursor. Failures are reported to `onError`, never thrown. */
  poll(): Promise<void> {
    this.#inflight ??= this.#read()
      .then(() => {
        this.#succeededPolls += 1;
      })
      .catch((error: unknown) => {
        this.#failedPolls += 1;
        this.#options.onError?.(error instanceof VerifierUnavailable ? error : new VerifierUnavailable('revocation feed read failed', { cause: error }));
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      void this.poll().then(() => this.#schedule(this.#options.intervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  async #read(): Promise<void> {
    const { feedUri } = this.#options;
    const base = typeof feedUri === 'string' ? feedUri : await feedUri();
    const startedAt = this.#options.now();
    for (let pages = 0; pages < MAX_PAGES_PER_POLL; pages += 1) {
      const page = await this.#page(base);
      for (const entry of page.revocations) this.#remember(entry);
      this.#cursor = page.next_cursor;
      if (!page.has_more) break;
    }
    // the list is as fresh as the moment this poll began
    this.#readAt = startedAt;
    this.#prune(startedAt);
  }

  async #page(base: string): Promise<FeedPage> {
    this.#polls += 1;
    const url = new URL(base);
    if (this.#cursor !== undefined) url.searchParams.set('since', this.#cursor);
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { authorization: this.#authorization, accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
    } catch (error) {
      throw new VerifierUnavailable('revocation feed unreachable', { cause: error });
    }
    if (!response.ok) throw new VerifierUnavailable(`revocation feed answered ${response.status} (check GUARD_CLIENT_ID/GUARD_CLIENT_SECRET)`);
    const body: unknown = await response.json().catch(() => undefined);
    if (!isPage(body)) throw new VerifierUnavailable('revocation feed answered something other than a page of revocations');
    return body;
  }

  #remember(entry: Record<string, unknown>): void {
    const expiresAt = entry['expires_at'];
    if (typeof expiresAt !== 'number') return;
    const until = expiresAt * 1000 + KEEP_PAST_EXPIRY_MS;
    if (typeof entry['jti'] === 'string') this.#jtis.set(entry['jti'], until);
    else if (typeof entry['grant_id'] === 'string') this.#grants.set(entry['grant_id'], until);
    else if (typeof entry['client_id'] === 'string' && typeof entry['revoked_at'] === 'number') this.#rememberClient(entry['client_id'], entry['revoked_at'], until);
    // an entry of any other kind is one this guard does not know: skipped, as older guards skip client_id entries
  }

  /**
   * A client revoked again (disabled once more) revokes up to a later moment: together the two
   * revoke every token issued up to the later one, until the later expiry.
   */
  #rememberClient(clientId: string, revokedAt: number, until: number): void {
    const known = this.#clients.get(clientId);
    this.#clients.set(clientId, known === undefined ? { revokedAt, until } : { revokedAt: Math.max(known.revokedAt, revokedAt), until: Math.max(known.until, until) });
  }

  #prune(now: number): void {
    for (const map of [this.#jtis, this.#grants]) {
      for (const [value, until] of map) if (until <= now) map.delete(value);
    }
    for (const [clientId, { until }] of this.#clients) if (until <= now) this.#clients.delete(clientId);
  }
}
