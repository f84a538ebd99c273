/* eslint-disable no-console -- a CI check: what it prints is its report */
// Runs in a fresh project outside the repository, against the packed and installed @sigil/guard:
// the README's express and Fastify usage, behind a real Sigil issuer. Exit 1 on any failure.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { URLSearchParams } from 'node:url';

import express from 'express';
import Fastify from 'fastify';
import { createGuard } from '@sigil/guard';
import { createCoreGuard, fastifyGuard } from '@sigil/guard/fastify';

const { ISSUER, AUDIENCE, WRITER_ID, WRITER_SECRET, READER_ID, READER_SECRET } = process.env;

async function token(id, secret) {
  const response = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: AUDIENCE }),
  });
  assert.equal(response.status, 200, `token request answered ${response.status}`);
  return (await response.json()).access_token;
}

// express, as the README shows it
const guard = createGuard({ issuer: ISSUER, audience: AUDIENCE });
const app = express();
app.get('/orders', guard.requireScope('orders:read'), (req, res) => res.json({ orders: [], caller: req.auth?.sub }));
app.post('/orders', guard.requireScope('orders:write'), (req, res) => res.status(201).json({ placedBy: req.auth?.sub }));
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const expressUrl = `http://127.0.0.1:${server.address().port}`;

// Fastify, as the README shows it
const core = createCoreGuard({ issuer: ISSUER, audience: AUDIENCE });
const auth = fastifyGuard(core);
const fastify = Fastify();
await fastify.register(auth.plugin);
fastify.get('/orders', { preHandler: auth.requireScope('orders:read') }, async (request) => ({ orders: [], caller: request.auth?.sub }));
fastify.post('/orders', { preHandler: auth.requireScope('orders:write') }, async (request, reply) => reply.code(201).send({ placedBy: request.auth?.sub }));
const fastifyUrl = await fastify.listen({ port: 0, host: '127.0.0.1' });

let failed = false;
try {
  const [writer, reader] = await Promise.all([token(WRITER_ID, WRITER_SECRET), token(READER_ID, READER_SECRET)]);
  for (const [name, base] of [['express', expressUrl], ['fastify', fastifyUrl]]) {
    const ok = await fetch(`${base}/orders`, { headers: { authorization: `Bearer ${writer}` } });
    assert.equal(ok.status, 200, `${name}: GET /orders with a token`);
    assert.equal((await ok.json()).caller, WRITER_ID, `${name}: the principal`);
    const placed = await fetch(`${base}/orders`, { method: 'POST', headers: { authorization: `Bearer ${writer}` } });
    assert.equal(placed.status, 201, `${name}: POST /orders with orders:write`);
    const missing = await fetch(`${base}/orders`);
    assert.equal(missing.status, 401, `${name}: no token`);
    assert.equal(missing.headers.get('www-authenticate'), `Bearer realm="${AUDIENCE}"`, `${name}: the challenge without a token`);
    assert.deepEqual(await missing.json(), { error: 'unauthorized', error_description: 'a bearer token or an API key is required' });
    const forbidden = await fetch(`${base}/orders`, { method: 'POST', headers: { authorization: `Bearer ${reader}` } });
    assert.equal(forbidden.status, 403, `${name}: a token without orders:write`);
    assert.match(forbidden.headers.get('www-authenticate') ?? '', /error="insufficient_scope".*scope="orders:write"/u, `${name}: the insufficient_scope challenge`);
    const forged = await fetch(`${base}/orders`, { headers: { authorization: `Bearer ${writer.slice(0, -4)}AAAA` } });
    assert.equal(forged.status, 401, `${name}: a bad signature`);
    console.log(`packed guard on ${name}: 200 with a token, 201 with orders:write, 401 without, 403 without the scope, 401 forged`);
  }
  const stats = core.stats();
  assert.equal(stats.requests.accepted, 3, 'fastify guard stats: accepted (two of the writer, one of the reader before its scope was refused)');
  console.log(`fastify guard stats: ${JSON.stringify(stats)}`);
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  guard.close();
  core.close();
  server.closeAllConnections();
  server.close();
  await fastify.close();
}
process.exit(failed ? 1 : 0);
