// @ts-check
/**
 * Baseline (c): oidc-provider alone answering client credentials, to tell the engine's own
 * cost per token from what Sigil adds around it. The engine's defaults wherever Sigil does
 * not need otherwise: its in-memory adapter, one static client (validated once), the client
 * credentials grant, resource indicators issuing RFC 9068 JWTs signed RS256, served by the
 * engine's own Koa app (no express, helmet, metrics or CORS). No storage, no logging.
 *
 * Env: PORT (required), WORKERS (node:cluster workers sharing the port, default 1),
 * CLIENT_ID / CLIENT_SECRET (required: the bench sends the same Basic header as to Sigil),
 * AUDIENCE (required).
 *
 * With REFRESH_CLIENT_ID / REFRESH_CLIENT_SECRET (one worker only: each worker's memory is its
 * own), also the refresh grant with rotation, as Sigil answers it: a second static client with
 * the refresh_token grant, every refresh rotated, any account found; and
 * `POST /bench/refresh-tokens?count=N`, outside the protocol, which issues N refresh tokens
 * (each under a grant of its own, scope orders:read for AUDIENCE) into the engine's memory and
 * answers them as a JSON array, for the load generator's pool (engine-refresh.js). The models
 * are then kept in a plain Map (`MapAdapter`) instead of the engine's in-memory adapter, a
 * cache of 1,000 entries that drops the pool's tokens under load; consumed refresh tokens stay
 * in it, as in Sigil's table. Without them nothing of this is configured, so the client
 * credentials baseline is as it was.
 */
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

import { closeOnSignals, runWorkers } from './workers.js';

const port = Number(process.env['PORT']);
const workers = Number(process.env['WORKERS'] ?? '1');
const clientId = process.env['CLIENT_ID'] ?? '';
const clientSecret = process.env['CLIENT_SECRET'] ?? '';
const audience = process.env['AUDIENCE'] ?? '';
const refreshClientId = process.env['REFRESH_CLIENT_ID'] ?? '';
const refreshClientSecret = process.env['REFRESH_CLIENT_SECRET'] ?? '';
const refresh = refreshClientId !== '' || refreshClientSecret !== '';
if (refresh && (refreshClientId === '' || refreshClientSecret === '' || workers !== 1)) {
  process.stderr.write('bare-engine: REFRESH_CLIENT_ID and REFRESH_CLIENT_SECRET go together, with WORKERS=1\n');
  process.exit(2);
}
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(workers) || workers < 1 || clientId === '' || clientSecret === '' || audience === '') {
  process.stderr.write('bare-engine: PORT, WORKERS (positive integers), CLIENT_ID, CLIENT_SECRET and AUDIENCE are required\n');
  process.exit(2);
}

/** Every model in one Map, never evicted (see the module comment); ids are per model. */
class MapAdapter {
  /** @type {Map<string, import('oidc-provider').AdapterPayload>} */
  static store = new Map();

  /** @param {string} model */
  constructor(model) {
    this.model = model;
  }

  /** @param {string} id */
  key(id) {
    return `${this.model}:${id}`;
  }

  /** @param {string} id @param {import('oidc-provider').AdapterPayload} payload */
  async upsert(id, payload) {
    MapAdapter.store.set(this.key(id), payload);
  }

  /** @param {string} id */
  async find(id) {
    return MapAdapter.store.get(this.key(id));
  }

  async findByUid() {
    return undefined;
  }

  async findByUserCode() {
    return undefined;
  }

  /** @param {string} id */
  async consume(id) {
    const payload = MapAdapter.store.get(this.key(id));
    if (payload !== undefined) MapAdapter.store.set(this.key(id), { ...payload, consumed: Math.floor(Date.now() / 1000) });
  }

  /** @param {string} id */
  async destroy(id) {
    MapAdapter.store.delete(this.key(id));
  }

  // the engine revokes a grant only on a reuse, which the bench never makes
  async revokeByGrantId() {}
}

/** The refresh client and what the refresh grant needs (see the module comment), or nothing. */
function refreshConfiguration() {
  if (!refresh) return { clients: [], configuration: {} };
  /** @type {import('oidc-provider').ClientMetadata[]} */
  const clients = [
    {
      client_id: refreshClientId,
      client_secret: refreshClientSecret,
      // the engine issues refresh tokens under a grant with a redirect; the bench makes them itself
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ];
  return {
    clients,
    configuration: {
      adapter: MapAdapter,
      rotateRefreshToken: true,
      /** @param {unknown} _ctx @param {string} sub */
      findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    },
  };
}

/**
 * `POST /bench/refresh-tokens?count=N` (1–1,000): N refresh tokens, issued as a password grant
 * of Sigil's would leave them (account, grant with the resource's scope, `gty`, resource).
 * @param {import('oidc-provider').default} provider
 */
function refreshTokenIssuer(provider) {
  /** @type {Parameters<import('oidc-provider').default['use']>[0]} */
  const middleware = async (ctx, next) => {
    if (ctx.path !== '/bench/refresh-tokens' || ctx.method !== 'POST') return next();
    const count = Number(ctx.query['count']);
    if (!Number.isInteger(count) || count < 1 || count > 1000) {
      ctx.status = 400;
      ctx.body = { error: 'count must be a whole number from 1 to 1000' };
      return undefined;
    }
    const client = await provider.Client.find(refreshClientId);
    if (client === undefined) throw new Error('bare-engine: the refresh client is not configured');
    /** @type {string[]} */
    const tokens = [];
    for (let i = 0; i < count; i += 1) {
      const grant = new provider.Grant({ accountId: `bench-user-${i}`, clientId: refreshClientId });
      grant.addResourceScope(audience, 'orders:read');
      const grantId = await grant.save();
      const token = new provider.RefreshToken({ client, accountId: `bench-user-${i}`, grantId, gty: 'password', scope: 'orders:read', resource: audience, iiat: Math.floor(Date.now() / 1000), rotations: 0 });
      tokens.push(await token.save());
    }
    ctx.body = tokens;
    return undefined;
  };
  return middleware;
}

function serve() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'RS256', use: 'sig' };
  const extra = refreshConfiguration();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    ...extra.configuration,
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      ...extra.clients,
    ],
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'orders:read', audience, accessTokenFormat: 'jwt', accessTokenTTL: 900, jwt: { sign: { alg: 'RS256' } } }),
      },
    },
  });
  if (refresh) provider.use(refreshTokenIssuer(provider));
  const server = provider.listen(port, '127.0.0.1');
  closeOnSignals(server);
}

runWorkers(workers, serve);
