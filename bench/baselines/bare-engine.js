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
 */
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

import { closeOnSignals, runWorkers } from './workers.js';

const port = Number(process.env['PORT']);
const workers = Number(process.env['WORKERS'] ?? '1');
const clientId = process.env['CLIENT_ID'] ?? '';
const clientSecret = process.env['CLIENT_SECRET'] ?? '';
const audience = process.env['AUDIENCE'] ?? '';
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(workers) || workers < 1 || clientId === '' || clientSecret === '' || audience === '') {
  process.stderr.write('bare-engine: PORT, WORKERS (positive integers), CLIENT_ID, CLIENT_SECRET and AUDIENCE are required\n');
  process.exit(2);
}

runWorkers(workers, serve);

function serve() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'RS256', use: 'sig' };
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
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
  const server = provider.listen(port, '127.0.0.1');
  closeOnSignals(server);
}
