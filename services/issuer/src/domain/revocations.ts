/**
 * Revoked JWT access tokens and ended grants. A JWT access token is never stored
 * (docs/engine.md#jwt-access-tokens-are-not-stored), so a revocation is a record of what no
 * longer counts: a token's `jti` until its `exp`, or a grant id until every access token minted
 * under it has expired. Introspection reads them; resource servers learn them from the
 * revocation feed (`GET /token/revocations`).
 */

/**
 * The longest lifetime any access token can have, in seconds (ACCESS_TOKEN_TTL's upper bound,
 * config.ts). An ended grant is recorded for this long: the store cannot know the TTL the
 * issuer ran with (the CLI that disables a user may run with another environment), and a
 * record kept longer than needed costs a row, one kept shorter a token accepted after revocation.
 */
export const ACCESS_TOKEN_TTL_BOUND = 86_400;

/** Entries in one page of the feed, at most. */
export const FEED_PAGE_SIZE = 1000;

export type RevocationKind = 'jti' | 'grant';

export interface Revocation {
  readonly kind: RevocationKind;
  readonly value: string;
  /** The resources the revoked tokens are for; empty: unknown (every resource service is told). */
  readonly audiences: readonly string[];
  readonly expiresAt: Date;
}

export interface RevokedEntry {
  readonly kind: RevocationKind;
  readonly value: string;
  readonly expiresAt: Date;
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
  /** Whether the access token `jti`, or the grant `grantId`, is recorded revoked and not yet past its expiry. */
  isRevoked(jti: string | undefined, grantId: string | undefined): Promise<boolean>;
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

/** What one page of the feed says (README#revocation-feed). */
export interface FeedAnswer {
  readonly revocations: ({ jti: string; expires_at: number } | { grant_id: string; expires_at: number })[];
  readonly next_cursor: string;
  readonly has_more: boolean;
}

/** One page of the feed for a resource service registered for `audiences`. */
export async function readFeed(store: RevocationStore, audiences: readonly string[], after: FeedCursor): Promise<FeedAnswer> {
  if (audiences.length === 0) return { revocations: [], next_cursor: formatCursor(after), has_more: false };
  const page = await store.page(audiences, after, FEED_PAGE_SIZE);
  return {
    revocations: page.entries.map(({ kind, value, expiresAt }) => {
      const expires_at = Math.ceil(expiresAt.getTime() / 1000);
      return kind === 'jti' ? { jti: value, expires_at } : { grant_id: value, expires_at };
    }),
    next_cursor: formatCursor(page.next),
    has_more: page.more,
  };
}
