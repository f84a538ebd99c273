// @ts-check
/**
 * Baseline (a): the floor any token endpoint pays. express 5, `express.urlencoded`, and one
 * RS256 signature (node:crypto, a KeyObject parsed once at start) of a small RFC 9068-shaped
 * JWT per POST /token. No client authentication, no storage.
 *
 * Env: PORT (required), WORKERS (node:cluster workers sharing the port, default 1; the bench
 * sets it to the issuer's WEB_CONCURRENCY so both have the same process shape).
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';

import express from 'express';

import { closeOnSignals, runWorkers } from './workers.js';

const port = Number(process.env['PORT']);
const workers = Number(process.env['WORKERS'] ?? '1');
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(workers) || workers < 1) {
  process.stderr.write('minimal-token: PORT and WORKERS must be positive integers\n');
  process.exit(2);
}

runWorkers(workers, serve);

function serve() {
  // generated once per process: what matters is a parsed KeyObject, not a PEM per call
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'bench' })).toString('base64url');
  const issuer = `http://127.0.0.1:${port}`;

  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  app.post('/token', (req, res) => {
    /** @type {Record<string, unknown>} */
    const body = req.body ?? {};
    if (body['grant_type'] !== 'client_credentials') {
      res.status(400).json({ error: 'unsupported_grant_type' });
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const scope = typeof body['scope'] === 'string' ? body['scope'] : '';
    const payload = Buffer.from(
      JSON.stringify({
        iss: issuer,
        sub: 'bench-client',
        aud: 'http://localhost:4001',
        client_id: 'bench-client',
        iat: now,
        exp: now + 900,
        jti: randomUUID(),
        scope,
        roles: [],
      }),
    ).toString('base64url');
    const input = `${header}.${payload}`;
    const signature = sign('sha256', Buffer.from(input), privateKey).toString('base64url');
    res.set('Cache-Control', 'no-store');
    res.json({ access_token: `${input}.${signature}`, token_type: 'Bearer', expires_in: 900, scope });
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const server = app.listen(port, '127.0.0.1');
  closeOnSignals(server);
}
