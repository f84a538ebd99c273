import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from 'oidc-provider';

import type { PayloadStore, StoredPayload } from '../storage/payloads.js';
import { UnstorableValueError } from '../storage/text.js';
import type { ClientCache } from './client-cache.js';
import { currentTokenRequest } from './engine-request.js';
import { deferConsumption, saveRefreshToken } from './refresh-rotation.js';
import { readAheadOf } from './request-read-ahead.js';
import { consumeSingleUse } from './single-use.js';

function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** A stored instance as the engine expects it: absent once expired, `consumed` set once consumed. */
function payloadOf(instance: StoredPayload | undefined): AdapterPayload | undefined {
  if (instance === undefined) return undefined;
  const { payload, expiresAt, consumedAt } = instance;
  if (expiresAt !== null && new Date(expiresAt).getTime() <= Date.now()) return undefined;
  return consumedAt === null ? payload : { ...payload, consumed: epochSeconds(new Date(consumedAt)) };
}

/**
 * Stores one oidc-provider model (Session, Interaction, AuthorizationCode, RefreshToken,
 * Grant, …) in the payload store. The engine's storage contract is described in
 * docs/engine.md#the-storage-adapter; rows past their expiry are treated as absent and removed
 * by the sweeper.
 */
export class PayloadAdapter implements Adapter {
  /**
   * @param request the engine's token request in progress (see engine-request.ts);
   *   `undefined` makes every call stand alone
   * @param retryWindow seconds a spent refresh token may be retried (REFRESH_TOKEN_RETRY_WINDOW)
   */
  constructor(
    private readonly payloads: PayloadStore,
    private readonly type: string,
    private readonly request: () => object | undefined = currentTokenRequest,
    private readonly retryWindow = 0,
  ) {}

  /**
   * Inserts or replaces the instance (every column, so nothing of a previous one survives);
   * `expiresIn` is in seconds. A refresh token's successor is stored by its rotation
   * (refresh-rotation.ts).
   */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const instance = { type: this.type, id, payload, expiresAt: expiresIn === undefined ? null : new Date(Date.now() + expiresIn * 1000) };
    try {
      if (this.type === 'RefreshToken') await saveRefreshToken(this.payloads, this.request(), instance, this.retryWindow);
      else await this.payloads.upsert(instance);
    } catch (error) {
      // a request parameter the engine keeps (state, nonce, login_hint…) carries U+0000
      if (error instanceof UnstorableValueError) throw new errors.InvalidRequest('a request parameter contains a character that is not allowed (U+0000)');
      throw error;
    }
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    if (this.type === 'RefreshToken') return this.findRefreshToken(id);
    if (this.type === 'Grant') {
      // read a moment ago with the refresh token that names it, in this same request
      const request = this.request();
      const grants = request === undefined ? undefined : readAheadOf(request).grants;
      if (grants?.has(id) === true) {
        const grant = grants.get(id);
        grants.delete(id);
        return Promise.resolve(grant);
      }
    }
    return this.findBy('id', id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findBy('uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findBy('user_code', userCode);
  }

  /**
   * Marks the instance consumed; later finds return it with `consumed` set. Atomic: of two
   * requests racing with the same code or refresh token, exactly one consumes it; the loser
   * is a reuse (single-use.ts). A refresh token inside a token request is rotated instead:
   * its consumption waits for its successor (refresh-rotation.ts).
   */
  async consume(id: string): Promise<void> {
    if (this.type === 'RefreshToken' && deferConsumption(this.request(), id)) return;
    await consumeSingleUse(this.payloads, this.type, id);
  }

  async destroy(id: string): Promise<void> {
    await this.payloads.destroy(this.type, id);
  }

  /**
   * Removes every instance of this model that belongs to the grant (the engine calls it once per
   * model). On the token endpoint the engine revokes only to end the whole grant (a replayed code,
   * a reused refresh token), so there the grant and all it issued go at once, in the order that
   * also removes a refresh token being stored under it at that moment (`PayloadStore.revokeGrant`).
   */
  async revokeByGrantId(grantId: string): Promise<void> {
    if (this.request() === undefined) await this.payloads.destroyByGrant(this.type, grantId);
    else await this.payloads.revokeGrant(grantId);
  }

  private async findBy(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    return payloadOf(await this.payloads.find(this.type, column, value));
  }

  /**
   * A refresh token, with (inside a token request) its grant and its user in the same round
   * trip: the engine asks for both next, and gets them from the request's read-ahead. A token
   * rotated less than the retry window ago is handed over as unspent: the engine then checks the
   * client, the grant and the account as for any refresh, and rotates it, which finds it spent
   * and answers with its successor or revokes the grant (refresh-rotation.ts).
   */
  private async findRefreshToken(id: string): Promise<AdapterPayload | undefined> {
    const request = this.request();
    if (request === undefined) return this.findBy('id', id);
    const found = await this.payloads.findRefreshToken(id, this.retryWindow);
    if (found === undefined) return undefined;
    const { grantId, accountId } = found.token.payload;
    const readAhead = readAheadOf(request);
    if (typeof grantId === 'string') readAhead.grants.set(grantId, payloadOf(found.grant));
    if (typeof accountId === 'string' && !readAhead.users.has(accountId)) readAhead.users.set(accountId, Promise.resolve(found.account));
    return payloadOf(found.retryable ? { ...found.token, consumedAt: null } : found.token);
  }
}

/**
 * Reads clients through the cache (or straight from their loader when there is none).
 * Registration is off, so the engine never writes through this adapter.
 */
class ClientAdapter implements Adapter {
  constructor(private readonly load: (id: string) => Promise<AdapterPayload | undefined>) {}

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.load(id);
  }

  async upsert(): Promise<void> {
    throw new Error('clients are managed with the sigil CLI');
  }

  async destroy(): Promise<void> {
    throw new Error('clients are managed with the sigil CLI');
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async revokeByGrantId(): Promise<void> {}
}

/**
 * The engine's adapters: clients from `loadClient` (through `clients`, the cache, when given),
 * every other model from the payload store; `refreshTokenRetryWindow` in seconds.
 */
export function adapterFactory(
  payloads: PayloadStore,
  loadClient: (id: string) => Promise<AdapterPayload | undefined>,
  clients?: ClientCache,
  refreshTokenRetryWindow = 0,
): AdapterFactory {
  const client = new ClientAdapter(clients === undefined ? loadClient : (id) => clients.find(id));
  return (name) => (name === 'Client' ? client : new PayloadAdapter(payloads, name, currentTokenRequest, refreshTokenRetryWindow));
}
