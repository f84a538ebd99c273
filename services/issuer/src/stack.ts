import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runDatabaseCommand } from './cli/run-command.js';
import { loadConfig } from './config.js';
import { DEMO_REDIRECT_URI, provisionDemo, type DemoSetup } from './stack/provision.js';

/**
 * `npm run stack`: the issuer and both example services on 4000/4001/4002, with a demo
 * machine client, API key, user, web app and admin client whose credentials are printed once,
 * for a first look. A run reuses what an earlier one registered (stack/provision.ts).
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

  // before the services start: they are handed their clients' new secrets
  const demo = await provisionDemo((name, input) => runDatabaseCommand(config, name, input), { issuer: config.issuer, orders: ORDERS, reports: REPORTS });

  const common = { ISSUER: config.issuer, LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn' };
  start('orders-api', 'services/orders-api/dist/main.js', {
    ...common,
    PORT: '4001',
    AUDIENCE: ORDERS,
    GUARD_CLIENT_ID: demo.ordersApi.id,
    GUARD_CLIENT_SECRET: demo.ordersApi.secret,
    REPORTS_URL: REPORTS,
  });
  start('reports-api', 'services/reports-api/dist/main.js', {
    ...common,
    PORT: '4002',
    AUDIENCE: REPORTS,
    GUARD_CLIENT_ID: demo.reportsApi.id,
    GUARD_CLIENT_SECRET: demo.reportsApi.secret,
  });
  await Promise.all([waitFor(`${ORDERS}/healthz`), waitFor(`${REPORTS}/healthz`)]);

  process.stdout.write(describeDemo(config.issuer, demo));
}

/** What the stack prints once it is up: the credentials of this run, and commands that use them. */
function describeDemo(issuer: string, { machine, web, admin, apiKey, user }: DemoSetup): string {
  const accessToken = `node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token'`;
  return `
Sigil stack is up (Ctrl-C stops it). These credentials are shown only now, and work until the
next run: it keeps the same demo clients and user but gives them new secrets and a new password,
and revokes the demo API key for a new one.

  issuer       ${issuer}
  orders-api   ${ORDERS}
  reports-api  ${REPORTS}

  demo machine client   ${machine.id}
  its secret            ${machine.secret}
  demo API key          ${apiKey.key}   (orders-api only; scope orders:read)
  demo user             ${user.username} / ${user.password}   (role admin)
  demo web app          ${web.id}
  its secret            ${web.secret}   (first-party; redirect ${DEMO_REDIRECT_URI})
  demo admin client     ${admin.id}
  its secret            ${admin.secret}   (scope sigil:admin, for the admin API at ${issuer}/admin/v1)

Try:

  TOKEN=$(curl -s -u '${machine.id}:${machine.secret}' -d grant_type=client_credentials ${issuer}/token | ${accessToken})
  curl -i -H "Authorization: Bearer $TOKEN" ${ORDERS}/orders
  curl -i -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"item":"widget","quantity":2}' ${ORDERS}/orders
  curl -i -H "Authorization: Bearer $TOKEN" ${ORDERS}/orders/admin/stats
  curl -i -H 'X-API-Key: ${apiKey.key}' ${ORDERS}/orders
  curl -i -H 'X-API-Key: ${apiKey.key}' -H 'content-type: application/json' -d '{"item":"x","quantity":1}' ${ORDERS}/orders   # 403: the key lacks orders:write
  REPORTS_TOKEN=$(curl -s -u '${machine.id}:${machine.secret}' -d grant_type=client_credentials -d resource=${REPORTS} ${issuer}/token | ${accessToken})
  curl -i -H "Authorization: Bearer $REPORTS_TOKEN" ${REPORTS}/reports
  curl -i -H "Authorization: Bearer $TOKEN" ${REPORTS}/reports   # 401: that token's audience is orders-api
  USER_TOKEN=$(curl -s -u '${web.id}:${web.secret}' -d grant_type=password -d username=${user.username} --data-urlencode 'password=${user.password}' ${issuer}/token | ${accessToken})
  curl -i -H "Authorization: Bearer $USER_TOKEN" ${ORDERS}/orders/admin/stats   # a person with the admin role
  curl -i -H "Authorization: Bearer $USER_TOKEN" ${ORDERS}/orders/summary   # orders-api exchanges the token and calls reports-api as the user: reports-api saw requested_by (the user) and act (orders-api)
  ADMIN_TOKEN=$(curl -s -u '${admin.id}:${admin.secret}' -d grant_type=client_credentials -d resource=${issuer}/admin ${issuer}/token | ${accessToken})
  curl -i -H "Authorization: Bearer $ADMIN_TOKEN" ${issuer}/admin/v1/clients

The web app can also sign the demo user in through the browser: see "Walkthrough: a person
signs in to a web app" in the README (use the demo web app's id and secret).

`;
}

main().catch((error: unknown) => {
  process.stderr.write(`stack: ${error instanceof Error ? error.message : String(error)}\n`);
  stop(1);
});
