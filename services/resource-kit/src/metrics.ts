import type { CoreGuard, GuardStats } from '@sigil/guard';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

/**
 * The Prometheus registry of a resource service: Node.js process metrics (prom-client's
 * defaults, prefixed `sigil_`) and the guard's counters, read from `guard.stats()` at each
 * scrape (the guard itself has no metrics dependency). Counters only, never a token or a name.
 *
 * @example
 * ```ts
 * const registry = guardMetrics(guard);
 * app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
 * ```
 */
export function guardMetrics(guard: CoreGuard): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sigil_' });
  /** A counter whose values are those `read` picks out of the guard's stats at scrape time. */
  const fromStats = <L extends string>(name: string, help: string, labelNames: readonly L[], read: (stats: GuardStats) => [Partial<Record<L, string>>, number][]) =>
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of read(guard.stats())) this.inc(labels, value);
      },
    });
  fromStats('sigil_guard_requests_total', 'Requests the guard decided: outcome accepted (the credential was), or refused with the reason code (one per refused request; a request refused for scope or role after its credential was accepted counts under both)', ['outcome', 'reason'], ({ requests }) => [
    [{ outcome: 'accepted' }, requests.accepted],
    ...Object.entries(requests.refused).map(([reason, count]): [Partial<Record<'outcome' | 'reason', string>>, number] => [{ outcome: 'refused', reason }, count ?? 0]),
  ]);
  fromStats('sigil_guard_verified_token_cache_total', 'Look-ups of access tokens in the verified-token cache, by result (hit, miss)', ['result'], ({ verifiedTokenCache }) => [
    [{ result: 'hit' }, verifiedTokenCache.hits],
    [{ result: 'miss' }, verifiedTokenCache.misses],
  ]);
  fromStats('sigil_guard_jwks_fetches_total', 'Requests for the issuer JWKS, by outcome (succeeded, failed)', ['outcome'], ({ jwksFetches }) => [
    [{ outcome: 'succeeded' }, jwksFetches.succeeded],
    [{ outcome: 'failed' }, jwksFetches.failed],
  ]);
  fromStats('sigil_guard_revocation_feed_polls_total', 'Polls of the issuer revocation feed, by outcome (succeeded, failed)', ['outcome'], ({ revocationFeedPolls }) => [
    [{ outcome: 'succeeded' }, revocationFeedPolls.succeeded],
    [{ outcome: 'failed' }, revocationFeedPolls.failed],
  ]);
  return registry;
}
