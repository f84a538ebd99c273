// Type-checked (never run) in the fresh project: the installed declarations are usable as the README uses them.
import express from 'express';
import Fastify from 'fastify';
import { createGuard, InvalidToken, type Guard, type GuardStats, type Principal } from '@sigil/guard';
import { createCoreGuard, fastifyGuard, type CoreGuard } from '@sigil/guard/fastify';
import { refusalOf, type Accepted, type Refusal } from '@sigil/guard/core';

const guard: Guard = createGuard({ issuer: 'http://localhost:4000', audience: 'http://localhost:4001' });
const app = express();
app.get('/orders', guard.requireScope('orders:read'), (req, res) => {
  const caller: Principal | undefined = req.auth;
  res.json({ caller: caller?.sub });
});

const core: CoreGuard = createCoreGuard({ issuer: 'http://localhost:4000', audience: 'http://localhost:4001' });
const auth = fastifyGuard(core);
const fastify = Fastify();
await fastify.register(auth.plugin);
fastify.get('/admin', { preHandler: [auth.requireAuth(), auth.requireRole('admin')] }, async (request) => ({ sub: request.auth?.sub }));

const outcome: Accepted | Refusal = await core.authenticateRequest({ method: 'GET', url: '/orders', headers: { authorization: 'Bearer x' } }, { scopes: ['orders:read'] });
const status: number = outcome.ok ? 200 : outcome.status;
const refusal: Refusal = refusalOf(new InvalidToken('expired'), 'http://localhost:4001');
const stats: GuardStats = guard.stats();
export const used = [status, refusal.headers['WWW-Authenticate'], stats.requests.accepted];
