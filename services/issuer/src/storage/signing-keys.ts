import type { Knex } from 'knex';

/** The table of the database key store (migration `signing_keys`). */
export const SIGNING_KEYS_TABLE = 'signing_keys';

/** Any number: the advisory lock every change of the key set holds (one per database). */
const KEY_SET_LOCK = 0x5167_6b65; // "Sgke"

/** A key as stored: public members in clear, private members sealed (keys/encryption.ts). */
export interface SigningKeyRow {
  readonly kid: string;
  readonly state: 'next' | 'current' | 'retired';
  readonly publicJwk: unknown;
  readonly sealedPrivate: string;
  readonly createdAt: Date;
  readonly activatedAt: Date | null;
  readonly retiredAt: Date | null;
}

interface Row {
  id: string;
  state: 'next' | 'current' | 'retired';
  public_jwk: unknown;
  sealed_private: string;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
}

const fromRow = (row: Row): SigningKeyRow => ({
  kid: row.id,
  state: row.state,
  publicJwk: row.public_jwk,
  sealedPrivate: row.sealed_private,
  createdAt: row.created_at,
  activatedAt: row.activated_at,
  retiredAt: row.retired_at,
});

/** Reads and writes of one change of the key set, inside its transaction. */
export interface SigningKeyWriter {
  list(): Promise<SigningKeyRow[]>;
  /** Inserts the key, or replaces the stored key of the same `kid`. */
  save(row: SigningKeyRow): Promise<void>;
  remove(kid: string): Promise<void>;
}

export interface SigningKeyStore {
  list(): Promise<SigningKeyRow[]>;
  /**
   * Runs `change` in one transaction holding the key set's advisory lock, so that replicas
   * never change keys at the same time; its writes commit together or not at all. With `wait`
   * false, gives up at once when another process holds the lock (undefined).
   */
  change<T>(change: (writer: SigningKeyWriter) => Promise<T>, wait: boolean): Promise<{ readonly value: T } | undefined>;
}

function listIn(db: Knex | Knex.Transaction): Promise<SigningKeyRow[]> {
  return db<Row>(SIGNING_KEYS_TABLE)
    .select('*')
    .orderBy('created_at')
    .orderBy('id')
    .then((rows: Row[]) => rows.map(fromRow));
}

export function createSigningKeyStore(db: Knex): SigningKeyStore {
  return {
    list: () => listIn(db),

    async change(change, wait) {
      return db.transaction(async (trx) => {
        if (wait) {
          // waiting for the lock is not a slow statement: another change (a key being generated) holds it
          await trx.raw('SET LOCAL statement_timeout = 0');
          await trx.raw('SELECT pg_advisory_xact_lock(?)', [KEY_SET_LOCK]);
        } else {
          const { rows } = await trx.raw<{ rows: { locked: boolean }[] }>('SELECT pg_try_advisory_xact_lock(?) AS locked', [KEY_SET_LOCK]);
          if (rows[0]?.locked !== true) return undefined;
        }
        const writer: SigningKeyWriter = {
          list: () => listIn(trx),
          async save(row) {
            await trx(SIGNING_KEYS_TABLE)
              .insert({
                id: row.kid,
                state: row.state,
                public_jwk: JSON.stringify(row.publicJwk),
                sealed_private: row.sealedPrivate,
                created_at: row.createdAt,
                activated_at: row.activatedAt,
                retired_at: row.retiredAt,
              })
              .onConflict('id')
              .merge();
          },
          async remove(kid) {
            await trx(SIGNING_KEYS_TABLE).where({ id: kid }).delete();
          },
        };
        return { value: await change(writer) };
      });
    },
  };
}
