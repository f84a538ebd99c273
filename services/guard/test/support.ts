import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

import { createGuard, type Guard, type GuardOptions } from '../src/index.js';

export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'https://orders.test';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  readonly publicJwk: JWK;
}

export async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** Signs an access token the way the issuer does; every part can be overridden to attack. */
export async function accessToken(
  key: SigningKey,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  return new SignJWT({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-1',
    client_id: 'web',
    jti: `jti-${Math.random()}`,
    iat: nowSeconds,
    exp: nowSeconds + 900,
    scope: 'orders:read',
    roles: [],
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: key.kid, ...header })
    .sign(key.privateKey);
}

/** A local HTTP server publishing a JWKS (the issuer's keys), counting its requests. */
export class JwksServer {
  keys: JWK[] = [];
  requests = 0;
  #server: Server | undefined;
  #port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.#port}/jwks`;
  }

  async start(port = 0): Promise<void> {
    this.#server = createServer((_req, res) => {
      this.requests += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve) => this.#server?.listen(port, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A resource service with guarded routes, served on a loopback port. */
export async function guardedApp(options: GuardOptions): Promise<{ url: string; guard: Guard; close(): Promise<void> }> {
  const guard = createGuard(options);
  const app = express();
  app.get('/me', guard.requireAuth(), (req, res) => {
    res.json(req.auth);
  });
  app.get('/orders', guard.requireScope('orders:read'), (_req, res) => {
    res.json({ orders: [] });
  });
  app.post('/orders', guard.requireScope('orders:read', 'orders:write'), (_req, res) => {
    res.status(201).json({});
  });
  app.get('/admin', guard.requireRole('admin', 'ops'), (_req, res) => {
    res.json({ ok: true });
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    guard,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
