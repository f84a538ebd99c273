import type { z } from 'zod';

import type { adminCommands } from '../admin/commands.js';

/** The commands whose input the CLI checks itself before running them (`runChecked`). */
export type CheckedCommand =
  | 'clients.create'
  | 'clients.show'
  | 'clients.update'
  | 'clients.disable'
  | 'clients.enable'
  | 'clients.delete'
  | 'clients.rotate-secret'
  | 'users.create'
  | 'users.set-roles'
  | 'users.disable'
  | 'users.show'
  | 'users.set-password'
  | 'users.delete'
  | 'api-keys.create'
  | 'api-keys.update'
  | 'api-keys.revoke'
  | 'api-keys.rotate'
  | 'audit.list';

/** The top-level fields of a command's input. */
type InputField<N extends CheckedCommand> = keyof z.input<(typeof adminCommands)[N]['input']> & string;

/** The settings of a client, as `clients create` and `clients update` take them. */
const CLIENT_SETTINGS = {
  name: '--name',
  grants: '--grant',
  scopes: '--scope',
  roles: '--role',
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  resources: '--resource',
  public: '--public',
  firstParty: '--first-party',
  accessTokenTtl: '--access-token-ttl',
  auth: '--auth',
  jwks: '--jwks-file',
  jwksUri: '--jwks-uri',
  requireDpop: '--require-dpop',
  mayExchangeFor: '--may-exchange-for',
} as const;
const CLIENT = { id: '<client_id>' } as const;
const USER = { username: '<username>' } as const;
const API_KEY = { id: '<id>' } as const;

/**
 * What each input field is called on the command line: its flag, or its argument as the usage
 * line shows it. The schemas are the admin API's too, and their findings name the camelCase
 * fields (`redirectUris.0`), which the API turns into its own snake_case names (admin/http/wire.ts);
 * this is where the CLI turns them into the words its user typed. A field the CLI never sets
 * (a user's `id`, a client's `disabled`) has no entry.
 */
const INPUT_NAMES: { readonly [N in CheckedCommand]: Partial<Record<InputField<N>, string>> } = {
  'clients.create': CLIENT_SETTINGS,
  'clients.show': CLIENT,
  'clients.update': { ...CLIENT, ...CLIENT_SETTINGS },
  'clients.disable': CLIENT,
  'clients.enable': CLIENT,
  'clients.delete': CLIENT,
  'clients.rotate-secret': { ...CLIENT, graceSeconds: '--grace' },
  'users.create': { username: '--username', password: '--password-stdin', roles: '--role', email: '--email' },
  'users.set-roles': { ...USER, roles: '[roles...]' },
  'users.disable': { ...USER, disabled: '--enable' },
  'users.show': USER,
  'users.set-password': { ...USER, password: '--password-stdin' },
  'users.delete': USER,
  'api-keys.create': { name: '--name', owner: '--owner', resources: '--resource', scopes: '--scope', roles: '--role', expiresIn: '--expires-in' },
  'api-keys.update': { ...API_KEY, resources: '--resource' },
  'api-keys.revoke': API_KEY,
  'api-keys.rotate': API_KEY,
  'audit.list': { since: '--since', type: '--type', limit: '--limit', cursor: '--cursor' },
};

/** `['keys', 0, 'kty']` → `keys[0].kty`, as a reader of a JSON file would point at it. */
function jsonPath(path: readonly PropertyKey[]): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`)).join('');
}

/** Whether `message` already names `flag` itself (`--access-token-ttl is at least 60 seconds`). */
function names(message: string, flag: string): boolean {
  return new RegExp(`(?:^|[^a-z-])${flag}(?![a-z-])`, 'u').test(message);
}

/**
 * One finding, in the CLI's words: the flag (or argument) that gave the value; for a flag given
 * several times, or a list in one (`--scope`), the value at fault too, so that the user sees
 * which one (`--redirect-uri "foo": …`).
 */
function describeIssue(issue: z.core.$ZodIssue, fields: Readonly<Record<string, string | undefined>>, input: Readonly<Record<string, unknown>>): string {
  const [top, ...rest] = issue.path;
  const flag = top === undefined ? undefined : fields[String(top)];
  if (top === undefined || flag === undefined) return issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message;
  const given = input[String(top)];
  const [index, ...inside] = rest;
  if (typeof index === 'number' && Array.isArray(given)) {
    const value = JSON.stringify(given[index]) ?? String(given[index]);
    return `${flag} ${value}${inside.length > 0 ? ` ${jsonPath(inside)}` : ''}: ${issue.message}`;
  }
  if (rest.length > 0) return `${flag}: ${jsonPath(rest)}: ${issue.message}`;
  return names(issue.message, flag) ? issue.message : `${flag}: ${issue.message}`;
}

/**
 * What the schema found wrong with the input of `command`, in one line, each finding named by
 * the flag or argument that gave it. `input` is what the CLI built from its flags.
 */
export function describeCliInput(command: CheckedCommand, input: unknown, error: z.ZodError): string {
  const fields = INPUT_NAMES[command] as Readonly<Record<string, string | undefined>>;
  const given = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
  return error.issues.map((issue) => describeIssue(issue, fields, given)).join('; ');
}
