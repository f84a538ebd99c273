import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
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
  /** The `Cache-Control` header of the answers; none when undefined. */
  cacheControl: string | undefined;
  requests = 0;
  #server: Server | undefined;
  #port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.#port}/jwks`;
  }

  async start(port = 0): Promise<void> {
    this.#server = createServer((_req, res) => {
      this.requests += 1;
      res.writeHead(200, { 'content-type': 'application/json', ...(this.cacheControl === undefined ? {} : { 'cache-control': this.cacheControl }) });
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

/** An HTTP handler (an express app) served on a loopback port; `close()` ends every connection. */
export async function listen(handler: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
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
  return { guard, ...(await listen(app)) };
}

/** A Sigil API key of the right shape: `sgk_` + 32 hex + `_` + 43 base64url characters. */
export const newApiKey = () => `sgk_${randomBytes(16).toString('hex')}_${randomBytes(32).toString('base64url')}`;

/**
 * A local RFC 7662 introspection endpoint, the issuer's side of API keys: it answers each
 * key from `answers` (`{"active":false}` for any other), counts the requests it receives,
 * and can hold its answers back until released, to keep a request in flight.
 */
export class IntrospectionServer {
  readonly answers = new Map<string, Record<string, unknown>>();
  requests = 0;
  /** The `token` of every request received, in order. */
  readonly asked: string[] = [];
  #held: (() => void)[] | undefined;
  #served: { url: string; close(): Promise<void> } | undefined;

  get url(): string {
    if (this.#served === undefined) throw new Error('IntrospectionServer not started');
    return `${this.#served.url}/token/introspection`;
  }

  async start(): Promise<void> {
    this.#served = await listen((req, res) => {
      this.requests += 1;
      let form = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        form += chunk;
      });
      req.on('end', () => {
        const token = new URLSearchParams(form).get('token') ?? '';
        this.asked.push(token);
        const answer = () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(this.answers.get(token) ?? { active: false }));
        };
        if (this.#held === undefined) answer();
        else this.#held.push(answer);
      });
    });
  }

  /** Holds every answer back until the returned function is called. */
  hold(): () => void {
    const held: (() => void)[] = [];
    this.#held = held;
    return () => {
      this.#held = undefined;
      for (const answer of held) answer();
    };
  }

  async stop(): Promise<void> {
    await this.#served?.close();
    this.#served = undefined;
  }
}
