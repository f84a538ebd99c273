/**
 * Revoked JWT access tokens, ended grants and revoked clients. A JWT access token is never stored
 * (docs/engine.md#jwt-access-tokens-are-not-stored), so a revocation is a record of what no
 * longer counts: a token's `jti` until its `exp`, a grant id until every access token minted
 * under it has expired, or a client id with a moment, for every access token issued to that
 * client up to it (a client credentials token has no grant to end). Introspection reads them;
 * resource servers learn them from the revocation feed (`GET /token/revocations`).
 */

/**
 * The longest lifetime any access token can have, in seconds (ACCESS_TOKEN_TTL's upper bound,
 * config.ts). An ended grant is recorded for this long: the store cannot know the TTL the
 * issuer ran with (the CLI that disables a user may run with another environment), and a
 * record kept longer than needed costs a row, one kept shorter a token accepted after revocation.
 */
export const ACCESS_TOKEN_TTL_BOUND = 86_400;

/**
 * How far past the disabling or deletion of a client its revocation reaches, in seconds. A token
 * request that found the client still enabled (in the database just before the change committed,
 * or in a replica's client cache before the change notification reached it) signs its token a
 * moment after the change: the margin covers that moment, and a database clock slightly behind
 * the issuer's. It fails closed: the tokens it refuses that it need not are those issued after
 * the change up to the moment (`iat` being whole seconds, up to the end of that second), which
 * only a client enabled again within about this long of being disabled can have.
 */
export const CLIENT_REVOCATION_MARGIN = 2;

/** Entries in one page of the feed, at most. */
export const FEED_PAGE_SIZE = 1000;

/**
 * `jti`: one access token; `grant`: every access token carrying that `grant_id`; `client`: every
 * access token whose `client_id` is that client and whose `iat` is at or before the entry's
 * `revokedAt`.
 */
export type RevocationKind = 'jti' | 'grant' | 'client';

/** A revocation recorded on its own (a client's is recorded by the client store, with its change). */
export interface Revocation {
  readonly kind: Exclude<RevocationKind, 'client'>;
  readonly value: string;
  /** The resources the revoked tokens are for; empty: unknown (every resource service is told). */
  readonly audiences: readonly string[];
  readonly expiresAt: Date;
}

export type RevokedEntry =
  | { readonly kind: 'jti' | 'grant'; readonly value: string; readonly expiresAt: Date }
  | {
      readonly kind: 'client';
      readonly value: string;
      /** Tokens issued (`iat`) at or before this moment are revoked, later ones are not. */
      readonly revokedAt: Date;
      readonly expiresAt: Date;
    };

/** What a JWT access token is matched on: its own claims (`jti`, `grant_id`, `client_id`, `iat` in seconds). */
export interface RevocableToken {
  readonly jti?: string | undefined;
  readonly grantId?: string | undefined;
  readonly clientId?: string | undefined;
  readonly issuedAt?: number | undefined;
}

/** A position in the feed: the writing transaction and the entry's id (decimal strings). */
export interface FeedCursor {
  readonly xid: string;
  readonly id: string;
}

export interface FeedPage {
  readonly entries: readonly RevokedEntry[];
  /** Where the next request starts (the given cursor when nothing was listed). */
  readonly next: FeedCursor;
  /** Whether the page is full, so more may follow at once. */
  readonly more: boolean;
}

export interface RevocationStore {
  /** Records a revoked token or grant (a second record of the same is harmless). */
  record(revocation: Revocation): Promise<void>;
  /**
   * Whether the access token is recorded revoked (by its `jti`, its grant, or its client and
   * `iat`) by an entry not yet past its expiry. A token with a `client_id` but no `iat` counts as
   * issued before any revocation of its client.
   */
  isRevoked(token: RevocableToken): Promise<boolean>;
  /** Unexpired entries after `after` for any of `audiences`, in feed order, at most `limit`. */
  page(audiences: readonly string[], after: FeedCursor, limit: number): Promise<FeedPage>;
  /** Deletes entries past their expiry. @returns how many */
  sweepExpired(): Promise<number>;
}

const START: FeedCursor = { xid: '0', id: '0' };
/** `<xid>-<id>`, both unsigned 64-bit decimals (the feed's cursors are opaque to clients). */
const CURSOR = /^(\d{1,20})-(\d{1,19})$/u;
const MAX_U64 = 2n ** 64n - 1n;
const MAX_I64 = 2n ** 63n - 1n;

export function formatCursor({ xid, id }: FeedCursor): string {
  return `${xid}-${id}`;
}

/** The cursor of `since`, the start for none, or undefined when it is no cursor this issuer made. */
export function parseCursor(since: string | undefined): FeedCursor | undefined {
  if (since === undefined || since === '') return START;
  const match = CURSOR.exec(since);
  if (match === null) return undefined;
  const [, xid = '', id = ''] = match;
  if (BigInt(xid) > MAX_U64 || BigInt(id) > MAX_I64) return undefined;
  return { xid: BigInt(xid).toString(), id: BigInt(id).toString() };
}

/**
 * One entry of the feed, keyed by the claim it matches (README#revocation-feed); a `client_id`
 * entry stands for every access token with that `client_id` and an `iat` at or before
 * `revoked_at`. A reader that knows only `jti` and `grant_id` entries skips it (as the guard
 * did before client revocations).
 */
export type FeedEntry =
  | { jti: string; expires_at: number }
  | { grant_id: string; expires_at: number }
  | { client_id: string; revoked_at: number; expires_at: number };

/** What one page of the feed says (README#revocation-feed). */
export interface FeedAnswer {
  readonly revocations: FeedEntry[];
  readonly next_cursor: string;
  readonly has_more: boolean;
}

function feedEntry(entry: RevokedEntry): FeedEntry {
  const expires_at = Math.ceil(entry.expiresAt.getTime() / 1000);
  switch (entry.kind) {
    case 'jti':
      return { jti: entry.value, expires_at };
    case 'grant':
      return { grant_id: entry.value, expires_at };
    case 'client':
      // `iat` is whole seconds: at or before the moment is at or before its whole second
      return { client_id: entry.value, revoked_at: Math.floor(entry.revokedAt.getTime() / 1000), expires_at };
  }
}

/** One page of the feed for a resource service registered for `audiences`. */
export async function readFeed(store: RevocationStore, audiences: readonly string[], after: FeedCursor): Promise<FeedAnswer> {
  if (audiences.length === 0) return { revocations: [], next_cursor: formatCursor(after), has_more: false };
  const page = await store.page(audiences, after, FEED_PAGE_SIZE);
  return {
    revocations: page.entries.map(feedEntry),
    next_cursor: formatCursor(page.next),
    has_more: page.more,
  };
}
