import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';

import { backends, temporaryDir } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { issuerSuite, testEnv } from '../support/issuer.js';
import { postForm } from '../support/oauth.js';

const ORDERS = 'http://localhost:4001';
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'staple orbit lantern';

/** An `auth_events` row as stored. */
interface EventRow {
  id: string;
  event: string;
  actor: string | null;
  object: string | null;
  user_id: string | null;
  username: string | null;
  client_id: string | null;
  detail: unknown;
}

interface ListedEvent {
  id: string;
  type: string;
  at: string;
  actor: string | null;
  object: string | null;
  username: string | null;
  client_id: string | null;
  ip: string | null;
}

describe.each(backends)('the audit trail of administration ($name)', (backend) => {
  // embedded: the CLI reaches the database through the running issuer's admin socket; PostgreSQL: directly
  const suite = issuerSuite(backend);
  const env = () => testEnv(suite.database);
  const adminRows = () => suite.issuer.db('auth_events').where('event', 'like', 'admin.%').orderBy('id').select<EventRow[]>('*');

  /** Runs one command and answers its output and the one admin event it wrote (failing on any other count). */
  const audited = async (args: string[], stdin?: string): Promise<{ output: Record<string, unknown>; stdout: string; event: EventRow }> => {
    const before = (await adminRows()).length;
    const result = await sigil([...args, '--json'], env(), stdin);
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    const rows = await adminRows();
    expect(rows.length - before).toBe(1);
    const event = rows.at(-1) as EventRow;
    expect(event.actor).toBe('cli');
    return { output: JSON.parse(result.stdout) as Record<string, unknown>, stdout: result.stdout, event };
  };
  const rowText = (event: EventRow) => JSON.stringify(event);

  it('when each admin command runs, it writes one event naming the cli, its type and its object, and never a secret', async () => {
    const client = await audited(['clients', 'create', '--name', 'audited-app', '--grant', 'client_credentials', '--resource', ORDERS]);
    const clientId = String(client.output['client_id']);
    expect(client.event).toMatchObject({ event: 'admin.client.created', object: clientId, client_id: clientId });
    expect(rowText(client.event)).not.toContain(String(client.output['client_secret']));
    const aboutClient = { object: clientId, client_id: clientId };
    expect((await audited(['clients', 'update', clientId, '--name', 'renamed-app'])).event).toMatchObject({ event: 'admin.client.updated', ...aboutClient, detail: { changed: ['name'] } });
    expect((await audited(['clients', 'disable', clientId])).event).toMatchObject({ event: 'admin.client.disabled', ...aboutClient });
    expect((await audited(['clients', 'enable', clientId])).event).toMatchObject({ event: 'admin.client.enabled', ...aboutClient });
    const rotated = await audited(['clients', 'rotate-secret', clientId, '--grace', '60']);
    expect(rotated.event).toMatchObject({ event: 'admin.client.secret_rotated', ...aboutClient, detail: { grace_seconds: 60 } });
    expect(rowText(rotated.event)).not.toContain(String(rotated.output['client_secret']));
    expect((await audited(['clients', 'delete', clientId])).event).toMatchObject({ event: 'admin.client.deleted', ...aboutClient });

    const apiKey = await audited(['api-keys', 'create', '--name', 'audited-key', '--resource', ORDERS]);
    const keyId = String(apiKey.output['id']);
    expect(apiKey.event).toMatchObject({ event: 'admin.api_key.created', object: keyId });
    expect(rowText(apiKey.event)).not.toContain(String(apiKey.output['key']));
    expect((await audited(['api-keys', 'update', keyId, '--resource', 'http://localhost:4002'])).event).toMatchObject({ event: 'admin.api_key.updated', object: keyId });
    const rotatedKey = await audited(['api-keys', 'rotate', keyId]);
    expect(rotatedKey.event).toMatchObject({ event: 'admin.api_key.rotated', object: keyId });
    expect(rowText(rotatedKey.event)).not.toContain(String(rotatedKey.output['key']));
    expect((await audited(['api-keys', 'revoke', keyId])).event).toMatchObject({ event: 'admin.api_key.revoked', object: keyId });

    const user = await audited(['users', 'create', '--username', 'audrey', '--password-stdin', '--role', 'reader'], `${PASSWORD}\n`);
    const userId = String(user.output['id']);
    const aboutAudrey = { object: userId, user_id: userId, username: 'audrey' };
    expect(user.event).toMatchObject({ event: 'admin.user.created', ...aboutAudrey });
    expect((await audited(['users', 'set-roles', 'audrey', 'ops'])).event).toMatchObject({ event: 'admin.user.roles_set', ...aboutAudrey, detail: { roles: ['ops'] } });
    expect((await audited(['users', 'disable', 'audrey'])).event).toMatchObject({ event: 'admin.user.disabled', ...aboutAudrey });
    expect((await audited(['users', 'disable', 'audrey', '--enable'])).event).toMatchObject({ event: 'admin.user.enabled', ...aboutAudrey });
    expect((await audited(['users', 'set-password', 'audrey', '--password-stdin'], `${NEW_PASSWORD}\n`)).event).toMatchObject({ event: 'admin.user.password_set', ...aboutAudrey });
    expect((await audited(['users', 'delete', 'audrey'])).event).toMatchObject({ event: 'admin.user.deleted', ...aboutAudrey });

    // no row of the trail carries a password, a hash, a secret or a key
    const everything = JSON.stringify(await suite.issuer.db('auth_events').select('*'));
    for (const secret of [PASSWORD, NEW_PASSWORD, String(client.output['client_secret']), String(rotated.output['client_secret']), String(apiKey.output['key']), '$argon2']) {
      expect(everything).not.toContain(secret);
    }
    // the deleted user's events stay
    expect((await adminRows()).filter((row) => row.user_id === userId)).toHaveLength(6);
  });

  it('when a command is refused or only reads, it writes no event', async () => {
    const before = await adminRows();
    for (const args of [['users', 'delete', 'nobody'], ['users', 'set-roles', 'nobody', 'x'], ['api-keys', 'revoke', '0'.repeat(32)], ['clients', 'list'], ['users', 'list'], ['audit', 'list']]) {
      await sigil(args, env());
    }
    await sigil(['users', 'create', '--username', 'shorty', '--password-stdin'], env(), 'short\n');
    expect(await adminRows()).toEqual(before);
  });

  it('audit list shows sign-in and admin events alike, newest first, filtered by type or prefix, since and limit', async () => {
    const created = await sigil(['users', 'create', '--username', 'lisa', '--password-stdin', '--json'], env(), `${PASSWORD}\n`);
    expect(created.code).toBe(0);
    const app = await sigilJson<{ client_id: string; client_secret: string }>(['clients', 'create', '--name', 'audit-list-app', '--grant', 'password', '--resource', ORDERS], env());
    const credentials = { id: app.client_id, secret: app.client_secret };
    expect((await postForm(suite.issuer.url, { grant_type: 'password', username: 'lisa', password: PASSWORD }, credentials)).status).toBe(200);
    expect((await postForm(suite.issuer.url, { grant_type: 'password', username: 'lisa', password: 'wrong password' }, credentials)).status).toBe(400);

    const { events } = await sigilJson<{ events: ListedEvent[] }>(['audit', 'list'], env());
    const ids = events.map((event) => BigInt(event.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
    expect(events.slice(0, 4)).toEqual([
      expect.objectContaining({ type: 'login.failure', actor: null, username: 'lisa', client_id: app.client_id, ip: expect.any(String) }),
      expect.objectContaining({ type: 'login.success', actor: null, username: 'lisa', client_id: app.client_id }),
      expect.objectContaining({ type: 'admin.client.created', actor: 'cli', object: app.client_id }),
      expect.objectContaining({ type: 'admin.user.created', actor: 'cli', username: 'lisa' }),
    ]);
    expect(Object.keys(events[0] ?? {}).sort()).toEqual(['actor', 'at', 'client_id', 'detail', 'id', 'ip', 'object', 'type', 'user_id', 'username']);

    const types = async (args: string[]) => (await sigilJson<{ events: ListedEvent[] }>(['audit', 'list', ...args], env())).events.map((event) => event.type);
    expect(new Set(await types(['--type', 'login.success']))).toEqual(new Set(['login.success']));
    expect((await types(['--type', 'admin.'])).every((type) => type.startsWith('admin.'))).toBe(true);
    expect(new Set(await types(['--type', 'login.']))).toEqual(new Set(['login.success', 'login.failure']));
    expect(new Set(await types(['--type', 'admin.api_key.']))).toEqual(new Set(['admin.api_key.created', 'admin.api_key.updated', 'admin.api_key.rotated', 'admin.api_key.revoked']));
    expect(await types(['--type', 'admin.user'])).toEqual([]);
    expect(await types(['--limit', '2'])).toEqual(['login.failure', 'login.success']);
    // the next page, older: from the cursor of the first
    const firstPage = await sigilJson<{ events: ListedEvent[]; next_cursor: string | null }>(['audit', 'list', '--limit', '2'], env());
    expect(await types(['--limit', '2', '--cursor', String(firstPage.next_cursor)])).toEqual(['admin.client.created', 'admin.user.created']);
    expect(await types(['--since', '2999-01-01'])).toEqual([]);
    const since = events[1]?.at ?? '';
    expect(await types(['--since', since])).toEqual(['login.failure', 'login.success']);
    expect(await types(['--since', '2000-01-01T00:00:00+02:00', '--type', 'login.success', '--limit', '1'])).toEqual(['login.success']);
  });

  it('when a recorded name carries control characters, the table prints them escaped, never raw', async () => {
    // HTTP refuses C0 and C1 controls before any sign-in; the trail holds whatever was recorded
    await suite.issuer.stores.audit.append({ event: 'login.failure', username: 'evil\u001b[2J\u009b31m\u202ename', ip: '127.0.0.1' });
    const table = await sigil(['audit', 'list', '--type', 'login.failure', '--limit', '1'], env());
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^id +at +type +actor +object +username +client_id +ip$/u);
    for (const raw of ['\u001b', '\u009b', '\u202e']) expect(table.stdout).not.toContain(raw);
    expect(table.stdout).toContain('evil\\u001b[2J\\u009b31m\\u202ename');
  });

  it('when audit list is given bad arguments, exits 2 with one line', async () => {
    const badArguments: [string[], string][] = [
      [['--limit', '0'], 'sigil: --limit: a limit is a whole number from 1 to 1000'],
      [['--limit', '1001'], 'sigil: --limit: a limit is a whole number from 1 to 1000'],
      [['--limit', 'ten'], 'sigil: --limit: a limit is a whole number from 1 to 1000'],
      [['--limit', '2.5'], 'sigil: --limit: a limit is a whole number from 1 to 1000'],
      [['--since', 'yesterday'], 'sigil: --since: since is an ISO 8601 date or date and time (2026-12-01, 2026-12-01T09:30:00Z), in years 1 to 9999'],
      [['--since', '2026-12-01T09:30:00'], 'sigil: --since: since is an ISO 8601 date or date and time (2026-12-01, 2026-12-01T09:30:00Z), in years 1 to 9999'],
      [['--type', 'Admin.'], 'sigil: --type: a type is an event type (admin.user.deleted) or a prefix ending in "." (admin.)'],
      [['--type', 'admin.%'], 'sigil: --type: a type is an event type (admin.user.deleted) or a prefix ending in "." (admin.)'],
      [['--cursor', 'abc'], 'sigil: --cursor: a cursor is a next_cursor this list returned'],
      [['--bogus'], "sigil: unknown option '--bogus'"],
    ];
    for (const [args, message] of badArguments) {
      const result = await sigil(['audit', 'list', ...args], env());
      expect({ args, code: result.code, stdout: result.stdout, stderr: result.stderr.trimEnd().split('\n') }).toEqual({ args, code: 2, stdout: '', stderr: [message] });
    }
  });
});

describe.each(backends)('the audit trail of key administration on the database key store ($name)', (backend) => {
  const secret = randomBytes(32).toString('base64url');
  const suite = issuerSuite(backend, { KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: secret });
  const env = () => ({ ...testEnv(suite.database), KEY_STORE: 'database', KEYS_ENCRYPTION_KEY: secret });

  it('when keys are generated, rotated, retired and re-encrypted, each writes one event naming its kid, never key material', async () => {
    const count = async () => Number((await suite.issuer.db('auth_events').where('event', 'like', 'admin.key.%').count<{ count: string }[]>('* as count'))[0]?.count);
    const run = async (args: string[]) => {
      const before = await count();
      const output = await sigilJson(args, env());
      expect(await count()).toBe(before + 1);
      const [event] = await suite.issuer.db('auth_events').orderBy('id', 'desc').limit(1).select<EventRow[]>('*');
      expect(event?.actor).toBe('cli');
      return { output, event };
    };
    const { keys } = await sigilJson<{ keys: { kid: string; state: string }[] }>(['keys', 'list'], env());
    const current = keys.find((key) => key.state === 'current')?.kid;
    const generated = await run(['keys', 'generate']);
    expect(generated.event).toMatchObject({ event: 'admin.key.generated', object: generated.output['kid'], detail: { state: 'next' } });
    const rotated = await run(['keys', 'rotate', '--force']);
    expect(rotated.event).toMatchObject({ event: 'admin.key.rotated', object: generated.output['kid'], detail: { retired: current, next: rotated.output['next'], force: true } });
    const retired = await run(['keys', 'retire', String(rotated.output['next'])]);
    expect(retired.event).toMatchObject({ event: 'admin.key.retired', object: rotated.output['next'] });
    expect((await run(['keys', 'reencrypt'])).event).toMatchObject({ event: 'admin.key.reencrypted', object: 'signing-keys' });

    const trail = JSON.stringify(await suite.issuer.db('auth_events').select('*'));
    expect(trail).not.toContain(secret);
    expect(trail).not.toMatch(/"(d|p|q|dp|dq|qi)":/u);
    expect(trail).not.toContain('sealed');
  });
});

describe.each(backends)('the audit trail of key administration on the file key store ($name)', (backend) => {
  // the default KEY_STORE=files: the CLI changes the files, and records the change where every admin command does
  const suite = issuerSuite(backend);
  const env = () => testEnv(suite.database);

  it('when keys are generated, rotated and retired, each writes one event naming its kid; a read writes none', async () => {
    const events = () => suite.issuer.db('auth_events').where('event', 'like', 'admin.key.%').orderBy('id').select<EventRow[]>('*');
    const run = async (args: string[]) => {
      const before = (await events()).length;
      const output = await sigilJson(args, env());
      const after = await events();
      expect(after.length).toBe(before + 1);
      expect(after.at(-1)?.actor).toBe('cli');
      return { output, event: after.at(-1) };
    };
    const before = (await events()).length;
    const { keys } = await sigilJson<{ keys: { kid: string; state: string }[] }>(['keys', 'list'], env());
    expect((await events()).length).toBe(before);
    const current = keys.find((key) => key.state === 'current')?.kid;
    const generated = await run(['keys', 'generate']);
    expect(generated.event).toMatchObject({ event: 'admin.key.generated', object: generated.output['kid'], detail: { state: 'next' } });
    const rotated = await run(['keys', 'rotate', '--force']);
    expect(rotated.event).toMatchObject({ event: 'admin.key.rotated', object: generated.output['kid'], detail: { retired: current, force: true } });
    const retired = await run(['keys', 'retire', String(rotated.output['next'])]);
    expect(retired.event).toMatchObject({ event: 'admin.key.retired', object: rotated.output['next'] });
    expect(JSON.stringify(await events())).not.toMatch(/"(d|p|q|dp|dq|qi)":/u);
  });
});

describe('keys made on the file store before there is any database', () => {
  it('when there is no embedded database in DATA_DIR yet, a key is made and no database is created just to hold its event', async () => {
    const elsewhere = await temporaryDir('keys-only');
    try {
      const env = { DATA_DIR: path.join(elsewhere, 'data'), KEYS_DIR: path.join(elsewhere, 'keys') };
      const generated = await sigilJson<{ kid: string }>(['keys', 'generate'], env);
      expect(generated.kid).toMatch(/^[A-Za-z0-9_-]{43}$/u);
      expect(await fs.readdir(elsewhere)).toEqual(['keys']);
    } finally {
      await fs.rm(elsewhere, { recursive: true, force: true });
    }
  });
});
