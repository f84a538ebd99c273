import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it } from '@jest/globals';
import { generateKeyPair, SignJWT } from 'jose';

import { loadConfig } from '../../issuer/src/config.js';
import { createLogger } from '../../issuer/src/logger.js';
import { startIssuer, type RunningIssuer } from '../../issuer/src/server.js';
import { backends, type TestDatabase } from '../../issuer/test/support/backends.js';
import { eventually } from '../../issuer/test/support/http.js';
import { freePort, testEnv } from '../../issuer/test/support/issuer.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/main.js');

/** The built orders-api (`node dist/main.js`) as its own process, its output kept. */
class OrdersProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;

  constructor(env: Record<string, string>) {
    this.#child = spawn(process.execPath, [MAIN], { env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child.stdout?.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.#child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.#child.on('close', (code) => resolve(code)));
  }

  /** The exit code, or 'running' if the process is still up after `ms`. */
  outcomeWithin(ms: number): Promise<number | null | 'running'> {
    return Promise.race([this.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), ms).unref())]);
  }

  stop(): Promise<number | null> {
    this.#child.kill('SIGTERM');
    return this.exited;
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
  }
}

/** Every stdout line is one JSON object (pino). */
function expectJsonLines(output: string): void {
  for (const line of output.split('\n').filter((text) => text !== '')) expect(() => JSON.parse(line) as unknown).not.toThrow();
}

/** A real issuer on `port` whose identifier is `issuer` (which need not be how others reach it). */
async function issuerOn(database: TestDatabase, port: number, issuer: string): Promise<RunningIssuer> {
  const config = loadConfig({ PORT: String(port), ISSUER: issuer, ...testEnv(database) });
  return startIssuer(config, createLogger(config.logLevel));
}

describe.each(backends)('orders-api start-up against the issuer’s metadata ($name)', (backend) => {
  let database: TestDatabase | undefined;
  let issuer: RunningIssuer | undefined;
  let orders: OrdersProcess | undefined;

  afterEach(async () => {
    orders?.kill();
    await orders?.exited;
    await issuer?.close();
    await database?.drop();
    orders = issuer = database = undefined;
  });

  it('when ISSUER differs from the identifier the metadata names, exits 1 at start with one line naming both, before listening', async () => {
    database = await backend.create();
    const port = await freePort();
    issuer = await issuerOn(database, port, `http://127.0.0.1:${port}`);
    orders = new OrdersProcess({ PORT: String(await freePort()), ISSUER: `http://localhost:${port}` });
    expect(await orders.outcomeWithin(15_000)).toBe(1);
    expect(orders.stderr).toBe(
      `orders-api: issuer metadata names issuer "http://127.0.0.1:${port}", not the configured "http://localhost:${port}" (check ISSUER)\n`,
    );
    expectJsonLines(orders.stdout);
    expect(orders.stdout).not.toContain('listening');
  });

  it('when the issuer is unreachable at start, serves (503 meanwhile) and keeps trying, then exits 1 with one line once the issuer answers with another identifier', async () => {
    database = await backend.create();
    const port = await freePort();
    const ordersPort = await freePort();
    orders = new OrdersProcess({ PORT: String(ordersPort), ISSUER: `http://127.0.0.1:${port}` });
    // an outage is not a configuration error: the service runs and answers 503 meanwhile
    const health = await eventually(async () => {
      const response = await fetch(`http://127.0.0.1:${ordersPort}/healthz`).catch(() => undefined);
      return response?.status;
    });
    expect(health).toBe(200);
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ iss: `http://127.0.0.1:${port}`, aud: 'http://localhost:4001', sub: 's', client_id: 's', jti: 'j', scope: 'orders:read' })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'some-key' })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await fetch(`http://127.0.0.1:${ordersPort}/orders`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(503);
    expect(orders.stdout).toContain('issuer unreachable at start');
    expect(orders.stderr).toBe('');

    issuer = await issuerOn(database, port, `http://localhost:${port}`);
    expect(await orders.outcomeWithin(20_000)).toBe(1);
    expect(orders.stderr).toBe(`orders-api: issuer metadata names issuer "http://localhost:${port}", not the configured "http://127.0.0.1:${port}" (check ISSUER)\n`);
    expectJsonLines(orders.stdout);
  });

  it('when ISSUER is the issuer’s identifier, starts, reads the metadata and stops cleanly on SIGTERM', async () => {
    database = await backend.create();
    const port = await freePort();
    issuer = await issuerOn(database, port, `http://127.0.0.1:${port}`);
    orders = new OrdersProcess({ PORT: String(await freePort()), ISSUER: `http://127.0.0.1:${port}` });
    await eventually(async () => (orders?.stdout.includes('orders-api listening') === true ? true : undefined), 15_000);
    expect(await orders.outcomeWithin(500)).toBe('running');
    expect(await orders.stop()).toBe(0);
    expect(orders.stderr).toBe('');
    expectJsonLines(orders.stdout);
  });
});
