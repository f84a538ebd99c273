import { describe, expect, it } from '@jest/globals';

import { createClient } from '../../src/domain/clients.js';
import { THROTTLE_POLICY } from '../../src/domain/login-throttle.js';
import { PasswordHasher } from '../../src/domain/passwords.js';
import { createUser } from '../../src/domain/users.js';
import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm, registerClient } from '../support/oauth.js';

/** The value of one sample (`name{labels} value`) in a Prometheus text answer, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.each(backends)('GET /metrics ($name)', (backend) => {
  const suite = issuerSuite(backend);

  it('when tokens are requested, counts them by grant type and outcome in Prometheus format, without secrets', async () => {
    const { client, clientSecret } = await createClient(suite.issuer.stores.clients, { name: 'm', grants: ['client_credentials'], resources: ['https://api.example.com'] });
    const ask = (secret: string) => postForm(suite.issuer.url, { grant_type: 'client_credentials' }, { id: client.id, secret });
    expect((await ask(clientSecret ?? '')).status).toBe(200);
    expect((await ask('wrong')).status).toBe(401);

    const response = await fetch(`${suite.issuer.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/u);
    const text = await response.text();
    expect(text).toContain('sigil_token_requests_total{grant_type="client_credentials",outcome="success"} 1');
    expect(text).toContain('sigil_token_requests_total{grant_type="client_credentials",outcome="invalid_client"} 1');
    expect(text).toMatch(/sigil_http_request_duration_seconds_count\{method="POST",route="\/token",status="200"\} 1/u);
    expect(text).toContain('sigil_process_cpu_seconds_total');
    expect(text).not.toContain(clientSecret ?? '-');
    expect(text).not.toContain(client.id);
  });

  it('reports the database pool, client-cache lookups, the signing key\'s age and throttle locks, read when scraped', async () => {
    const { stores } = suite.issuer;
    const ORDERS = 'https://orders.example.com';
    const app = await registerClient(stores.clients, { name: 'metrics-app', grants: ['password', 'client_credentials'], resources: [ORDERS] });
    await createUser(stores.users, { username: 'metered', password: 'a long and right password' }, new PasswordHasher());
    const scrape = async () => (await fetch(`${suite.issuer.url}/metrics`)).text();

    const before = await scrape();
    // twice the same client: the second lookup (at least) is answered from the cache
    for (let i = 0; i < 2; i += 1) expect((await postForm(suite.issuer.url, { grant_type: 'client_credentials' }, app)).status).toBe(200);
    // the pair (account + address) locks at its threshold
    for (let i = 0; i < THROTTLE_POLICY.pair.threshold; i += 1) {
      expect((await postForm(suite.issuer.url, { grant_type: 'password', username: 'metered', password: `wrong ${i}` }, app)).status).toBe(400);
    }
    expect((await postForm(suite.issuer.url, { grant_type: 'password', username: 'metered', password: 'wrong again' }, app)).status).toBe(429);
    const after = await scrape();

    const hits = (text: string) => sample(text, 'sigil_client_cache_lookups_total{result="hit"}') ?? 0;
    expect(hits(after)).toBeGreaterThan(hits(before));
    expect(sample(after, 'sigil_client_cache_lookups_total{result="miss"}')).toBeGreaterThanOrEqual(1);

    // nothing in flight while scraping but the scrape's own query for the locked keys, maybe
    expect(sample(after, 'sigil_database_pool_connections{state="in_use"}')).toBeGreaterThanOrEqual(0);
    expect(sample(after, 'sigil_database_pool_connections{state="idle"}')).toBeGreaterThanOrEqual(0);
    expect(sample(after, 'sigil_database_pool_connections{state="max"}')).toBe(backend.name === 'postgres' ? 10 : 1);
    expect(sample(after, 'sigil_database_pool_waiting')).toBe(0);

    // five wrong passwords ran argon2id: their time shows, in this process's slots
    const hashing = (text: string) => sample(text, 'sigil_password_hashing_seconds_total') ?? 0;
    expect(hashing(after)).toBeGreaterThan(hashing(before));
    expect(sample(after, 'sigil_password_hashing_slots')).toBeGreaterThanOrEqual(1);

    const age = sample(after, 'sigil_signing_key_age_seconds');
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(600);

    expect(sample(after, 'sigil_login_locks_total{key="pair"}')).toBe(1);
    expect(sample(after, 'sigil_login_locked_keys{key="pair"}')).toBe(1);
    expect(sample(after, 'sigil_login_locked_keys{key="account"}')).toBe(0);
    expect(after).not.toContain('metered');
  });
});
