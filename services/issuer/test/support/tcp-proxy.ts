import net from 'node:net';

/**
 * How the proxy treats traffic: `pass` relays it; `reset` resets every open connection and
 * every new one at once (RST: a database that went away); `blackhole` keeps every connection,
 * new ones included, but drops every byte both ways without a word (a silent partition: what
 * is sent meanwhile is lost).
 */
export type ProxyMode = 'pass' | 'reset' | 'blackhole';

/** One client connection and, once made, its connection to the target. */
interface Relay {
  readonly client: net.Socket;
  upstream: net.Socket | undefined;
  /** The target hung up while traffic was dropped: the client hears it when traffic passes again. */
  upstreamGone: boolean;
}

/**
 * A TCP proxy in the test process, in front of a server (PostgreSQL): the network between the
 * issuer and its database, which a test can cut in the ways networks fail.
 *
 * @example
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 5432 });
 * proxy.setMode('blackhole'); // … proxy.setMode('pass');
 * await proxy.close();
 */
export class TcpProxy {
  #mode: ProxyMode = 'pass';
  readonly #relays = new Set<Relay>();

  private constructor(
    private readonly server: net.Server,
    private readonly target: { readonly host: string; readonly port: number },
  ) {
    server.on('connection', (client) => this.#accept(client));
  }

  /** Listens on a free loopback port, relaying to `target`. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = net.createServer();
    const proxy = new TcpProxy(server, target);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** How many client connections the proxy holds now. */
  get connections(): number {
    return this.#relays.size;
  }

  setMode(mode: ProxyMode): void {
    this.#mode = mode;
    for (const relay of [...this.#relays]) {
      if (mode === 'reset') this.#reset(relay);
      else if (mode === 'pass' && relay.upstreamGone) this.#end(relay);
    }
  }

  /** Stops listening and cuts every connection. */
  async close(): Promise<void> {
    for (const relay of [...this.#relays]) this.#end(relay);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const relay: Relay = { client, upstream: undefined, upstreamGone: false };
    this.#relays.add(relay);
    client.on('error', () => this.#end(relay));
    client.on('close', () => this.#end(relay));
    if (this.#mode === 'reset') {
      this.#reset(relay);
      return;
    }
    client.on('data', (chunk: Buffer) => {
      if (this.#mode === 'pass') relay.upstream?.write(chunk);
    });
    // a connection made during a partition never reaches the target: its first bytes are lost
    if (this.#mode === 'pass') this.#connectUpstream(relay);
  }

  #connectUpstream(relay: Relay): void {
    const upstream = net.connect(this.target.port, this.target.host);
    relay.upstream = upstream;
    upstream.on('data', (chunk: Buffer) => {
      if (this.#mode === 'pass') relay.client.write(chunk);
    });
    const gone = () => {
      if (this.#mode === 'pass') this.#end(relay);
      else relay.upstreamGone = true;
    };
    upstream.on('error', gone);
    upstream.on('close', gone);
  }

  #reset(relay: Relay): void {
    this.#relays.delete(relay);
    relay.upstream?.destroy();
    if (!relay.client.destroyed) relay.client.resetAndDestroy();
  }

  #end(relay: Relay): void {
    this.#relays.delete(relay);
    relay.upstream?.destroy();
    relay.client.destroy();
  }
}
