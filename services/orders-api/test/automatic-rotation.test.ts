import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createAccessTokenVerifier } from '@sigil/guard';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

import { describeOnPostgres, type TestDatabase } from '../../issuer/test/support/backends.js';
import { basicAuth } from '../../issuer/test/support/http.js';
import { startTestIssuer, type TestIssuer } from '../../issuer/test/support/issuer.js';
import { captureLogs, type CapturedLogs } from '../../issuer/test/support/logs.js';
import { registerClient, type Credentials } from '../../issuer/test/support/oauth.js';

const AUDIENCE = 'http://localhost:4001';
/**
 * A short schedule (a lead of 30 s: jose's default cooldown): key B published at 5 s and promoted
 * at 35 s, key C published at 40 s and promoted at 70 s, after the load has stopped.
 */
const INTERVAL_S = 35;
const LEAD_S = 30;
/** How long the load runs, from the first key's start: past B's promotion and C's publication, short of C's promotion. */
const LOAD_MS = 62_000;


interface Step {
  readonly step: string;
  readonly kid: string;
  readonly time: number;
}

describeOnPostgres('automatic key rotation across two replicas under load ($name)', (backend) => {
  let database: TestDatabase;
  let replicas: TestIssuer[];
  let logs: CapturedLogs[];
  let client: Credentials;

  beforeAll(async () => {
    database = await backend.create();
    const secret = randomBytes(32).toString('base64url');
    logs = [captureLogs(), captureLogs()];
    const env = (name: string) => ({
      DATA_DIR: path.join(path.dirname(database.dataDir), `${name}-data`),
      KEYS_DIR: path.join(path.dirname(database.dataDir), `${name}-keys`),
      KEY_STORE: 'database',
      KEYS_ENCRYPTION_KEY: secret,
      KEY_ROTATION_INTERVAL: String(INTERVAL_S),
      KEY_PUBLISH_LEAD: String(LEAD_S),
      LOG_LEVEL: 'info',
    });
    const first = await startTestIssuer(database, env('a'), { logger: (config) => (logs[0] as CapturedLogs).logger(config.logLevel) });
    // one issuer behind a load balancer: both replicas answer for the first one's ISSUER
    const second = await startTestIssuer(database, { ...env('b'), ISSUER: first.issuer }, { logger: (config) => (logs[1] as CapturedLogs).logger(config.logLevel) });
    replicas = [first, second];
    client = await registerClient(first.stores.clients, { name: 'rotation-load', grants: ['client_credentials'], resources: [AUDIENCE] });
  }, 60_000);

  afterAll(async () => {
    for (const replica of replicas ?? []) await replica.close();
    await database?.drop();
  });

  // the steps of both replicas, in the order they were taken
  const steps = (): Step[] =>
    logs
      .flatMap((captured) => captured.lines.filter((line) => line.includes('signing key rotation step')).map((line) => JSON.parse(line) as Step))
      .sort((a, b) => a.time - b.time);

  it('over a minute of load, each step (publish B, promote B, publish C) is taken exactly once across the replicas, and no fresh token is refused by the guard or by jose with its defaults', async () => {
    const [first] = replicas as [TestIssuer, TestIssuer];
    const guard = createAccessTokenVerifier({ issuer: first.issuer, audience: AUDIENCE, jwksUri: `${first.url}/jwks` });
    const jose = createRemoteJWKSet(new URL(`${first.url}/jwks`));
    const counts = { tokens: 0, guardRefused: 0, joseRefused: 0 };
    const refusals: string[] = [];
    const kids = new Set<string>();
    const firstKeyAt = Date.parse(String((await first.db('signing_keys').first('activated_at'))?.activated_at ?? ''));
    expect(Number.isNaN(firstKeyAt)).toBe(false);

    for (let turn = 0; Date.now() < firstKeyAt + LOAD_MS; turn += 1) {
      const replica = replicas[turn % 2] as TestIssuer;
      const response = await fetch(`${replica.url}/token`, {
        method: 'POST',
        headers: { authorization: basicAuth(client.id, client.secret) },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      expect(response.status).toBe(200);
      const token = ((await response.json()) as { access_token: string }).access_token;
      counts.tokens += 1;
      kids.add(decodeProtectedHeader(token).kid ?? '');
      await guard.verify(token).catch((error: unknown) => {
        counts.guardRefused += 1;
        refusals.push(`guard: ${String(error)}`);
      });
      await jwtVerify(token, jose, { issuer: first.issuer, audience: AUDIENCE, algorithms: ['RS256'] }).catch((error: unknown) => {
        counts.joseRefused += 1;
        refusals.push(`jose: ${String(error)}`);
      });
    }

    expect(steps().map((step) => step.step)).toEqual(['publish', 'promote', 'publish']);
    // B was published, then promoted; then C was published
    expect(steps()[1]?.kid).toBe(steps()[0]?.kid);
    expect(steps()[2]?.kid).not.toBe(steps()[0]?.kid);
    expect(refusals.slice(0, 3)).toEqual([]);
    expect(counts).toEqual({ tokens: counts.tokens, guardRefused: 0, joseRefused: 0 });
    expect(counts.tokens).toBeGreaterThan(100);
    // tokens of both keys were issued and verified
    expect(kids.size).toBe(2);
    const rows = await first.db('signing_keys').select('id', 'state').orderBy('created_at');
    expect(rows.map((row: { state: string }) => row.state)).toEqual(['retired', 'current', 'next']);
    // the counters of both replicas add up to one step each
    const stepsCounted = async (replica: TestIssuer, step: string) => {
      const text = await (await fetch(`${replica.url}/metrics`)).text();
      const match = new RegExp(`^sigil_signing_key_rotation_steps_total\\{step="${step}"\\} (\\d+)$`, 'mu').exec(text);
      return Number(match?.[1] ?? 0);
    };
    for (const [step, times] of [['publish', 2], ['promote', 1]] as const) {
      expect((await stepsCounted(replicas[0] as TestIssuer, step)) + (await stepsCounted(replicas[1] as TestIssuer, step))).toBe(times);
    }
    const metrics = await (await fetch(`${first.url}/metrics`)).text();
    expect(metrics).toMatch(/^sigil_signing_key_age_seconds \d/mu);
    expect(metrics).toMatch(/^sigil_signing_key_next_rotation_seconds \d/mu);
    process.stdout.write(`automatic rotation: ${counts.tokens} tokens through 2 replicas, steps ${JSON.stringify(steps().map((step) => step.step))}, refused: guard ${counts.guardRefused}, jose ${counts.joseRefused}\n`);
  }, 150_000);
});
