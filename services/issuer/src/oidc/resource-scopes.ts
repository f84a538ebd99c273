import type { ClientStore } from '../domain/clients.js';
import type { ChangeFeed } from '../storage/changes.js';
import { withDelegatedScopes } from './scope-policy.js';

/**
 * Which scopes each resource declares (see {@link ClientStore.resourcePolicy}), with
 * those it may pass on by token exchange ({@link withDelegatedScopes}).
 */
export type DeclaredScopes = ReadonlyMap<string, readonly string[]>;

/**
 * The resources' declared scopes, read once and kept until any client changes (the `clients`
 * trigger's notifications): resource services' own clients are few and change rarely, and every
 * token request needs them. While the feed is not live every read goes to the database; a read
 * that a change overtook serves its caller but is not kept. The issuer's own resources (the
 * admin API) declare their scopes here, `builtIn`, and no client can declare others for them.
 */
export class ResourceScopes {
  readonly #clients: Pick<ClientStore, 'resourcePolicy'>;
  readonly #feed: Pick<ChangeFeed, 'live' | 'subscribe'> | undefined;
  readonly #builtIn: DeclaredScopes;
  /** The last read, kept as a value: a kept promise would keep the request it was made in (docs/engine.md). */
  #value: DeclaredScopes | undefined;
  /** The read on its way, shared by the callers meanwhile. */
  #loading: Promise<DeclaredScopes> | undefined;
  /** Counts changes: a read that a change overtook is not kept. */
  #generation = 0;

  constructor(clients: Pick<ClientStore, 'resourcePolicy'>, feed?: Pick<ChangeFeed, 'live' | 'subscribe'>, builtIn: DeclaredScopes = new Map()) {
    this.#clients = clients;
    this.#feed = feed;
    this.#builtIn = builtIn;
    // any change forgets the read, even one still in flight (its caller still gets it)
    feed?.subscribe('clients', () => this.forget());
  }

  /** Forgets the read now (a client changed in this process), as a notification would. */
  forget(): void {
    this.#value = undefined;
    this.#loading = undefined;
    this.#generation += 1;
  }

  /** Every declared resource with its scopes. */
  declared(): Promise<DeclaredScopes> {
    if (this.#feed?.live !== true) return this.#read();
    if (this.#value !== undefined) return Promise.resolve(this.#value);
    if (this.#loading !== undefined) return this.#loading;
    const generation = this.#generation;
    // a failed read is not kept: the next request tries again
    const loading: Promise<DeclaredScopes> = this.#read()
      .then((value) => {
        if (this.#generation === generation) this.#value = value;
        return value;
      })
      .finally(() => {
        if (this.#loading === loading) this.#loading = undefined;
      });
    this.#loading = loading;
    return loading;
  }

  async #read(): Promise<DeclaredScopes> {
    const { declared: own, exchangeTargets } = await this.#clients.resourcePolicy();
    const declared = withDelegatedScopes(own, exchangeTargets, new Set(this.#builtIn.keys()));
    for (const [resource, scopes] of this.#builtIn) declared.set(resource, [...scopes]);
    return declared;
  }
}
