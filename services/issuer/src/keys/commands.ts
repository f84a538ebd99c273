import path from 'node:path';

import { z } from 'zod';

import { DatabaseKeyStore } from './database-store.js';
import { readKeys } from './file-store.js';
import { KeyNotFoundError, KeyRequestError, KeyStoreError, type KeyStore, type StoredKey } from './key-store.js';
import { generateKey, retireKey, rotateKeys } from './lifecycle.js';

/** What a key command runs with: the configured store and KEY_PUBLISH_LEAD. */
export interface KeyCommandContext {
  readonly store: KeyStore;
  readonly publishLead: number;
}

export interface KeyCommand<Input> {
  readonly input: z.ZodType<Input>;
  run(context: KeyCommandContext, input: Input): Promise<Record<string, unknown>>;
}

/** A key as commands show it: never the key material. */
export const keyViewSchema = z
  .object({
    kid: z.string(),
    state: z.enum(['next', 'current', 'retired']),
    alg: z.string(),
    created_at: z.iso.datetime({ offset: true }),
    activated_at: z.iso.datetime({ offset: true }).optional(),
    retired_at: z.iso.datetime({ offset: true }).optional(),
    may_sign_from: z.iso.datetime({ offset: true }).optional().describe('a next key may be promoted from then on (KEY_PUBLISH_LEAD after its publication)'),
  })
  .strict();

export type KeyView = z.infer<typeof keyViewSchema>;

function keyView(key: StoredKey, publishLead: number): KeyView {
  return {
    kid: key.jwk.kid,
    state: key.state,
    alg: key.jwk.alg,
    created_at: key.createdAt,
    ...(key.activatedAt === undefined ? {} : { activated_at: key.activatedAt }),
    ...(key.retiredAt === undefined ? {} : { retired_at: key.retiredAt }),
    ...(key.state === 'next' ? { may_sign_from: new Date(Date.parse(key.createdAt) + publishLead * 1000).toISOString() } : {}),
  };
}

/** What `keys rotate` answers: the kids now current, retired (null: none was current) and next. */
export const keyRotationSchema = z.object({ current: z.string(), retired: z.string().nullable(), next: z.string() }).strict();

function databaseStore(store: KeyStore, command: string): DatabaseKeyStore {
  if (store instanceof DatabaseKeyStore) return store;
  throw new KeyRequestError(`"sigil keys ${command}" works on the database key store: set KEY_STORE=database (and KEYS_ENCRYPTION_KEY)`);
}

const empty = z.object({}).strict();
/** A key id: an RFC 7638 thumbprint, 43 base64url characters. */
const kid = z.string().regex(/^[A-Za-z0-9_-]{43}$/u, 'a kid is 43 base64url characters (see sigil keys list)');
const rotateInput = z.object({ force: z.boolean().default(false) }).strict();
/** One key, by kid (`keys show`, `keys retire`). */
const retireInput = z.object({ kid }).strict();
const importInput = z.object({ from_dir: z.string().min(1).refine((dir) => path.isAbsolute(dir), 'must be an absolute path') }).strict();

/**
 * The key lifecycle commands (`sigil keys …`), one implementation whichever store holds the
 * keys and whoever calls: the CLI on the file store, or through the admin commands on the
 * database (directly, or through a running embedded issuer's admin socket).
 */
export const keyCommands = {
  'keys.list': {
    input: empty,
    run: async ({ store, publishLead }) => ({ keys: (await store.list()).map((key) => keyView(key, publishLead)) }),
  } satisfies KeyCommand<z.infer<typeof empty>>,
  'keys.show': {
    input: retireInput,
    run: async ({ store, publishLead }, { kid: wanted }) => {
      const key = (await store.list()).find((candidate) => candidate.jwk.kid === wanted);
      if (key === undefined) throw new KeyNotFoundError(`no key with kid ${wanted} in ${store.description}`);
      return keyView(key, publishLead);
    },
  } satisfies KeyCommand<z.infer<typeof retireInput>>,
  'keys.generate': {
    input: empty,
    run: async ({ store, publishLead }) => keyView(await generateKey(store), publishLead),
  } satisfies KeyCommand<z.infer<typeof empty>>,
  'keys.rotate': {
    input: rotateInput,
    run: async ({ store, publishLead }, { force }) => {
      const { current, retired, next } = await rotateKeys(store, { publishLead, force });
      const rotation: z.infer<typeof keyRotationSchema> = { current: current.jwk.kid, retired: retired?.jwk.kid ?? null, next: next.jwk.kid };
      return rotation;
    },
  } satisfies KeyCommand<z.infer<typeof rotateInput>>,
  'keys.retire': {
    input: retireInput,
    run: async ({ store }, input) => {
      const key = await retireKey(store, input.kid);
      return { kid: key.jwk.kid, state: key.state, retired_at: key.retiredAt };
    },
  } satisfies KeyCommand<z.infer<typeof retireInput>>,
  'keys.import': {
    input: importInput,
    run: async ({ store }, { from_dir: dir }) => importKeys(databaseStore(store, 'import'), dir),
  } satisfies KeyCommand<z.infer<typeof importInput>>,
  'keys.reencrypt': {
    input: empty,
    run: async ({ store }) => databaseStore(store, 'reencrypt').reencrypt(),
  } satisfies KeyCommand<z.infer<typeof empty>>,
} as const;

export type KeyCommandName = keyof typeof keyCommands;

/**
 * `sigil keys import --from-dir DIR`: the file store's keys into the database store, states and
 * dates kept, in one transaction. A key already there is skipped (running it twice is harmless);
 * a database store that already signs with another key is left alone.
 */
async function importKeys(store: DatabaseKeyStore, dir: string): Promise<Record<string, unknown>> {
  const source = await readKeys(dir);
  if (source.length === 0) throw new KeyRequestError(`${dir} holds no key files`);
  return store.change(async (keys, editor) => {
    const known = new Set(keys.map((key) => key.jwk.kid));
    const incoming = source.filter((key) => !known.has(key.jwk.kid));
    const clash = (state: StoredKey['state']) =>
      keys.some((key) => key.state === state) && incoming.some((key) => key.state === state);
    if (clash('current') || clash('next')) {
      const states = (['current', 'next'] as const).filter(clash).join(' and ');
      throw new KeyStoreError(`${store.description} already has a ${states} key of its own: import into an empty database key store (or retire its keys first)`);
    }
    for (const key of incoming) await editor.save(key);
    return { imported: incoming.map((key) => key.jwk.kid), skipped: source.filter((key) => known.has(key.jwk.kid)).map((key) => key.jwk.kid) };
  });
}

/** `input` for `name`, validated. @throws KeyRequestError on bad input, in the schema's own words */
export function keyCommandInput(name: KeyCommandName, input: unknown): unknown {
  const parsed = (keyCommands[name] as KeyCommand<unknown>).input.safeParse(input);
  if (!parsed.success) throw new KeyRequestError(parsed.error.issues.map((issue) => issue.message).join('; '));
  return parsed.data;
}

/** Validates `input` for `name` and runs the command. @throws KeyRequestError on bad input */
export async function runKeyCommand(context: KeyCommandContext, name: KeyCommandName, input: unknown): Promise<Record<string, unknown>> {
  return (keyCommands[name] as KeyCommand<unknown>).run(context, keyCommandInput(name, input));
}
