import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

import type { Logger } from '../logger.js';
import { KeyRequestError, KeyStoreError } from '../keys/key-store.js';
import { AdminInputError, isAdminChange, isAdminCommandName, runAdminCommand, type AdminContext } from './commands.js';

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;
const MAX_BODY = 64 * 1024;

export function adminSocketPath(dataDir: string): string {
  return path.join(dataDir, 'admin.sock');
}

/** The admin channel's reply: a command's result, or why it failed. */
export type AdminReply =
  | { ok: true; result: Record<string, unknown> }
  | { ok: false; error: { code: 'invalid_input' | 'unknown_command' | 'refused' | 'failed'; message: string } };

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new AdminInputError('request too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Serves the admin commands on a Unix socket inside the 0700 data directory: only the
 * owner of the data directory can reach it, and nothing listens on a TCP port. The issuer
 * opens it while it owns the embedded database, so the CLI keeps working beside it.
 */
export async function startAdminSocket(dataDir: string, context: AdminContext, logger: Logger): Promise<() => Promise<void>> {
  const socketPath = adminSocketPath(dataDir);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new Error(`DATA_DIR path is too long for the admin socket (${socketPath}); use a shorter DATA_DIR`);
  }
  // a socket left by a crashed owner: we hold the data directory lock, so it is stale
  await fs.rm(socketPath, { force: true });

  const server = http.createServer(async (req, res) => {
    const reply = (status: number, body: AdminReply) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const name = req.method === 'POST' ? req.url?.replace(/^\/commands\//u, '') : undefined;
    if (name === undefined || !isAdminCommandName(name)) {
      reply(404, { ok: false, error: { code: 'unknown_command', message: 'unknown admin command' } });
      return;
    }
    try {
      const input: unknown = JSON.parse(await readBody(req));
      const result = await runAdminCommand(context, name, input);
      // a change has its own line (admin.change, event-log.ts): this one only at debug then
      logger[isAdminChange(name) ? 'debug' : 'info']({ command: name }, 'admin command');
      reply(200, { ok: true, result });
    } catch (error) {
      if (error instanceof AdminInputError || error instanceof SyntaxError || error instanceof KeyRequestError) {
        reply(400, { ok: false, error: { code: 'invalid_input', message: error.message } });
        return;
      }
      if (error instanceof KeyStoreError) {
        // a refusal the operator acts on (a rotation before the lead, a store that can't be written): its own line
        reply(409, { ok: false, error: { code: 'refused', message: error.message } });
        return;
      }
      logger.error({ err: error, command: name }, 'admin command failed');
      reply(500, { ok: false, error: { code: 'failed', message: 'the command failed; see the issuer log' } });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketPath, readableAll: false, writableAll: false }, () => resolve());
  });
  await fs.chmod(socketPath, 0o600);

  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

/**
 * Sends a command to a running issuer's admin socket.
 * @returns the reply, or undefined when no issuer listens there
 */
export function sendAdminCommand(dataDir: string, name: string, input: unknown): Promise<AdminReply | undefined> {
  const body = JSON.stringify(input);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: adminSocketPath(dataDir),
        method: 'POST',
        path: `/commands/${name}`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdminReply);
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(undefined);
      else reject(error);
    });
    req.end(body);
  });
}
