import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';

/**
 * How long a keep-alive connection that has just become idle stays open once the drain has
 * begun. A client that reuses it sends its next request within moments of the last response;
 * closing the connection under that request would reset it, so the request is served instead
 * (with `Connection: close`). A connection idle for longer than this is closed at once.
 */
export const LAST_CALL_MS = 500;

interface Connection {
  /** Requests received on it whose responses have not closed yet. */
  inFlight: number;
  /** When its last response closed. */
  idleSince: number;
  /** `socket.bytesRead` then: more since means a next request is arriving. */
  bytesAtIdle: number;
}

export interface Drain {
  /** Closes the listener: no new connections; those open carry on as before. */
  stopAccepting(): void;
  /** Stops accepting, lets requests in flight finish and resolves once every connection is closed, or at `graceMs`. */
  drain(graceMs: number): Promise<void>;
}

/**
 * Tracks a server's connections and requests (build it before the server listens).
 *
 * While draining, every response not yet started carries `Connection: close` (node then closes
 * the connection once it is written), and a connection is closed only between requests: when it
 * is idle and has received nothing since its last response for LAST_CALL_MS. At `graceMs`
 * whatever is left is destroyed.
 */
class ListenerDrain implements Drain {
  readonly #connections = new Map<Socket, Connection>();
  readonly #responses = new Set<ServerResponse>();
  #accepting = true;
  #draining = false;
  #settled: (() => void) | undefined;

  constructor(private readonly server: Server) {
    server.on('connection', (socket: Socket) => this.#onConnection(socket));
    // first of the 'request' listeners, so that the flag is set before any handler can answer
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
  }

  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    // http.Server#close() would also destroy idle keep-alive connections at once, resetting a
    // request already on its way on one of them: stop listening with net's close instead
    net.Server.prototype.close.call(this.server);
  }

  drain(graceMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const deadline = setTimeout(() => {
        this.server.closeAllConnections();
        for (const socket of this.#connections.keys()) socket.destroy();
        this.#settled?.();
      }, graceMs);
      this.#settled = () => {
        this.#settled = undefined;
        clearTimeout(deadline);
        // the HTTP server's own close (its timers); the listener is already closed
        this.server.close();
        resolve();
      };
      this.#draining = true;
      this.stopAccepting();
      for (const res of this.#responses) if (!res.headersSent) res.shouldKeepAlive = false;
      for (const [socket, connection] of this.#connections) if (connection.inFlight === 0) this.#closeWhenIdle(socket, connection);
      this.#check();
    });
  }

  #check(): void {
    if (this.#draining && this.#connections.size === 0 && this.#responses.size === 0) this.#settled?.();
  }

  #onConnection(socket: Socket): void {
    const connection = { inFlight: 0, idleSince: Date.now(), bytesAtIdle: 0 };
    this.#connections.set(socket, connection);
    // accepted just before the listener closed: its first request gets the same time as any
    if (this.#draining) this.#closeWhenIdle(socket, connection);
    socket.once('close', () => {
      this.#connections.delete(socket);
      this.#check();
    });
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const { socket } = req;
    const connection = this.#connections.get(socket);
    if (this.#draining) res.shouldKeepAlive = false;
    this.#responses.add(res);
    if (connection !== undefined) connection.inFlight += 1;
    res.once('close', () => {
      this.#responses.delete(res);
      if (connection !== undefined && --connection.inFlight === 0) {
        Object.assign(connection, { idleSince: Date.now(), bytesAtIdle: socket.bytesRead });
        if (this.#draining && !socket.destroyed) this.#closeWhenIdle(socket, connection);
      }
      this.#check();
    });
  }

  #closeWhenIdle(socket: Socket, connection: Connection): void {
    const wait = Math.max(0, connection.idleSince + LAST_CALL_MS - Date.now());
    // after the timer, one turn of the event loop: bytes already received are parsed (a request is then in flight) before we decide
    const decide = () => {
      if (connection.inFlight > 0 || socket.destroyed) return;
      if (socket.bytesRead === connection.bytesAtIdle) {
        socket.destroy();
        return;
      }
      // part of a request: give it the same time to arrive in full
      Object.assign(connection, { idleSince: Date.now(), bytesAtIdle: socket.bytesRead });
      this.#closeWhenIdle(socket, connection);
    };
    setTimeout(() => setImmediate(decide), wait).unref();
  }
}

/** The drain of `server`: call before it listens. */
export function drainable(server: Server): Drain {
  return new ListenerDrain(server);
}
