import { beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

import { backends } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { eventually } from '../support/http.js';
import { issuerSuite, testEnv } from '../support/issuer.js';
import { postForm, registerClient, type Credentials } from '../support/oauth.js';

const AUDIENCE = 'https://api.example.com';

describe.each(backends)('key rotation while the issuer runs ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let client: Credentials;

  const token = async () => {
    const response = await postForm(suite.issuer.url, { grant_type: 'client_credentials' }, client);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const kids = async () =>
    ((await (await fetch(`${suite.issuer.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort();

  beforeAll(async () => {
    client = await registerClient(suite.issuer.stores.clients, { name: 'rotation', grants: ['client_credentials'], resources: [AUDIENCE] });
  });

  it('when keys are generated and rotated (before the lead only with --force), the issuer follows without a restart and old tokens stay verifiable', async () => {
    const env = testEnv(suite.database);
    const before = await token();
    const first = decodeProtectedHeader(before).kid ?? '';

    const next = await sigilJson<{ kid: string; state: string }>(['keys', 'generate'], env);
    expect(next.state).toBe('next');
    // published before it signs
    await eventually(async () => ((await kids()).includes(next.kid) ? true : undefined));
    expect(decodeProtectedHeader(await token()).kid).toBe(first);

    // published seconds ago: verifiers may not have it yet (KEY_PUBLISH_LEAD, 3600 s by default)
    const early = await sigil(['keys', 'rotate'], env);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(new RegExp(`^sigil: next key ${next.kid} has been published for \\d+ s of the 3600 s KEY_PUBLISH_LEAD: \\d+ s left \\(it may sign from [^)]+\\); verifiers may not have fetched it yet: run "sigil keys rotate" again then, or now with --force\n$`, 'u'));
    expect(decodeProtectedHeader(await token()).kid).toBe(first);

    const rotation = await sigilJson<{ current: string; retired: string; next: string }>(['keys', 'rotate', '--force'], env);
    expect(rotation).toEqual({ current: next.kid, retired: first, next: expect.any(String) });
    const after = await eventually(async () => {
      const fresh = await token();
      return decodeProtectedHeader(fresh).kid === next.kid ? fresh : undefined;
    });
    expect(await kids()).toEqual([first, next.kid, rotation.next].sort());

    const jwks = createRemoteJWKSet(new URL(`${suite.issuer.url}/jwks`));
    for (const jwt of [before, after]) {
      const { payload } = await jwtVerify(jwt, jwks, { issuer: suite.issuer.issuer, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['RS256'] });
      expect(payload.client_id).toBe(client.id);
    }

    const refused = await sigil(['keys', 'retire', next.kid], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`sigil: ${next.kid} is the current signing key; run "sigil keys rotate" to replace it first\n`);
  });
});
