import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runDatabaseCommand } from './cli/run-command.js';
import { loadConfig } from './config.js';

/**
 * `npm run stack`: the issuer and both example services on 4000/4001/4002, with a demo
 * machine client, API key, user and web app whose credentials are printed once, for a first look.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ISSUER_PORT = 4000;
const ORDERS = 'http://localhost:4001';
const REPORTS = 'http://localhost:4002';

const children: ChildProcess[] = [];

function start(name: string, script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [path.join(root, script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`stack: ${name} exited (${signal ?? code}); stopping the stack\n`);
      stop(1);
    }
  });
  children.push(child);
  return child;
}

let stopping = false;
/** How long the services get to drain (the issuer's SHUTDOWN_GRACE, once read) before they are killed. */
let stopWaitMs = 10_000 + 2000;

/** SIGTERM to every service (each drains), then exit once they all have, or kill what is left after `stopWaitMs`. */
function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
  const exited = running.map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of running) child.kill('SIGTERM');
  const deadline = setTimeout(() => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(1);
  }, stopWaitMs);
  void Promise.all(exited).then(() => {
    clearTimeout(deadline);
    process.exit(code);
  });
}

async function waitFor(url: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not become ready`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function main(): Promise<void> {
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  const env = { ...process.env, PORT: String(ISSUER_PORT) };
  const config = loadConfig(env, process.cwd(), 'admin');
  stopWaitMs = config.shutdownGrace * 1000 + 2000;
  start('issuer', 'services/issuer/dist/main.js', { PORT: String(ISSUER_PORT), LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn' });
  await waitFor(`http://127.0.0.1:${ISSUER_PORT}/readyz`);

  const machine = await runDatabaseCommand(config, 'clients.create', {
    name: 'demo-machine',
    grants: ['client_credentials'],
    scopes: ['orders:read', 'orders:write', 'reports:read'],
    roles: ['admin'],
    resources: [ORDERS, REPORTS],
  });
  // each service's own client (no grant: it only introspects) declares the scopes of its audience
  const ordersClient = await runDatabaseCommand(config, 'clients.create', {
    name: 'orders-api',
    scopes: ['orders:read', 'orders:write'],
    resources: [ORDERS],
  });
  const reportsClient = await runDatabaseCommand(config, 'clients.create', {
    name: 'reports-api',
    scopes: ['reports:read'],
    resources: [REPORTS],
  });
  const apiKey = await runDatabaseCommand(config, 'api-keys.create', { name: 'demo-key', resources: [ORDERS], scopes: ['orders:read'] });
  const webApp = await runDatabaseCommand(config, 'clients.create', {
    name: 'demo-web',
    grants: ['authorization_code', 'refresh_token', 'password'],
    scopes: ['openid', 'profile', 'orders:read', 'orders:write'],
    redirectUris: ['http://127.0.0.1:8080/callback'],
    resources: [ORDERS],
    firstParty: true,
  });
  const userPassword = randomBytes(12).toString('base64url');
  const username = `demo-${randomBytes(3).toString('hex')}`;
  await runDatabaseCommand(config, 'users.create', { username, password: userPassword, roles: ['admin'] });

  const common = { ISSUER: config.issuer, LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn' };
  start('orders-api', 'services/orders-api/dist/main.js', {
    ...common,
    PORT: '4001',
    AUDIENCE: ORDERS,
    GUARD_CLIENT_ID: String(ordersClient['client_id']),
    GUARD_CLIENT_SECRET: String(ordersClient['client_secret']),
  });
  start('reports-api', 'services/reports-api/dist/main.js', {
    ...common,
    PORT: '4002',
    AUDIENCE: REPORTS,
    GUARD_CLIENT_ID: String(reportsClient['client_id']),
    GUARD_CLIENT_SECRET: String(reportsClient['client_secret']),
  });
  await Promise.all([waitFor(`${ORDERS}/healthz`), waitFor(`${REPORTS}/healthz`)]);

  const id = String(machine['client_id']);
  const secret = String(machine['client_secret']);
  process.stdout.write(`
Sigil stack is up (Ctrl-C stops it). These credentials are shown only now.

  issuer       ${config.issuer}
  orders-api   ${ORDERS}
  reports-api  ${REPORTS}

  demo machine client   ${id}
  its secret            ${secret}
  demo API key          ${String(apiKey['key'])}   (orders-api only; scope orders:read)
  demo user             ${username} / ${userPassword}   (role admin)
  demo web app          ${String(webApp['client_id'])}
  its secret            ${String(webApp['client_secret'])}   (first-party; redirect http://127.0.0.1:8080/callback)

Try:

  TOKEN=$(curl -s -u '${id}:${secret}' -d grant_type=client_credentials ${config.issuer}/token | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -i -H "Authorization: Bearer $TOKEN" ${ORDERS}/orders
  curl -i -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"item":"widget","quantity":2}' ${ORDERS}/orders
  curl -i -H "Authorization: Bearer $TOKEN" ${ORDERS}/orders/admin/stats
  curl -i -H 'X-API-Key: ${String(apiKey['key'])}' ${ORDERS}/orders
  curl -i -H 'X-API-Key: ${String(apiKey['key'])}' -H 'content-type: application/json' -d '{"item":"x","quantity":1}' ${ORDERS}/orders   # 403: the key lacks orders:write
  REPORTS_TOKEN=$(curl -s -u '${id}:${secret}' -d grant_type=client_credentials -d resource=${REPORTS} ${config.issuer}/token | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -i -H "Authorization: Bearer $REPORTS_TOKEN" ${REPORTS}/reports
  curl -i -H "Authorization: Bearer $TOKEN" ${REPORTS}/reports   # 401: that token's audience is orders-api
  USER_TOKEN=$(curl -s -u '${String(webApp['client_id'])}:${String(webApp['client_secret'])}' -d grant_type=password -d username=${username} --data-urlencode 'password=${userPassword}' ${config.issuer}/token | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -i -H "Authorization: Bearer $USER_TOKEN" ${ORDERS}/orders/admin/stats   # a person with the admin role

The web app can also sign the demo user in through the browser: see "Walkthrough: a person
signs in to a web app" in the README (use the demo web app's id and secret).

`);
}

main().catch((error: unknown) => {
  process.stderr.write(`stack: ${error instanceof Error ? error.message : String(error)}\n`);
  stop(1);
});
