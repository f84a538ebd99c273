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
 * Tracks the server's connections and requests (call before it listens) and returns its drain.
 *
 * While draining, every response not yet started carries `Connection: close` (node then closes
 * the connection once it is written), and a connection is closed only between requests: when it
 * is idle and has received nothing since its last response for LAST_CALL_MS. At `graceMs`
 * whatever is left is destroyed.
 */
export function drainable(server: Server): Drain {
  const connections = new Map<Socket, Connection>();
  const responses = new Set<ServerResponse>();
  let draining = false;
  let settled: (() => void) | undefined;
  const check = () => {
    if (draining && connections.size === 0 && responses.size === 0) settled?.();
  };

  const closeWhenIdle = (socket: Socket, connection: Connection) => {
    const wait = Math.max(0, connection.idleSince + LAST_CALL_MS - Date.now());
    // after the timer, one turn of the event loop: bytes already received are parsed (a request is then in flight) before we decide
    setTimeout(() => setImmediate(() => {
      if (connection.inFlight > 0 || socket.destroyed) return;
      if (socket.bytesRead !== connection.bytesAtIdle) {
        // part of a request: give it the same time to arrive in full
        Object.assign(connection, { idleSince: Date.now(), bytesAtIdle: socket.bytesRead });
        closeWhenIdle(socket, connection);
        return;
      }
      socket.destroy();
    }), wait).unref();
  };

  server.on('connection', (socket: Socket) => {
    const connection = { inFlight: 0, idleSince: Date.now(), bytesAtIdle: 0 };
    connections.set(socket, connection);
    // accepted just before the listener closed: its first request gets the same time as any
    if (draining) closeWhenIdle(socket, connection);
    socket.once('close', () => {
      connections.delete(socket);
      check();
    });
  });
  // first of the 'request' listeners, so that the flag is set before any handler can answer
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const { socket } = req;
    const connection = connections.get(socket);
    if (draining) res.shouldKeepAlive = false;
    responses.add(res);
    if (connection !== undefined) connection.inFlight += 1;
    res.once('close', () => {
      responses.delete(res);
      if (connection !== undefined && --connection.inFlight === 0) {
        Object.assign(connection, { idleSince: Date.now(), bytesAtIdle: socket.bytesRead });
        if (draining && !socket.destroyed) closeWhenIdle(socket, connection);
      }
      check();
    });
  });

  let accepting = true;
  const stopAccepting = () => {
    if (!accepting) return;
    accepting = false;
    // http.Server#close() would also destroy idle keep-alive connections at once, resetting a
    // request already on its way on one of them: stop listening with net's close instead
    net.Server.prototype.close.call(server);
  };
  const drain = (graceMs: number) =>
    new Promise<void>((resolve) => {
      const deadline = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of connections.keys()) socket.destroy();
        settled?.();
      }, graceMs);
      settled = () => {
        settled = undefined;
        clearTimeout(deadline);
        // the HTTP server's own close (its timers); the listener is already closed
        server.close();
        resolve();
      };
      draining = true;
      stopAccepting();
      for (const res of responses) if (!res.headersSent) res.shouldKeepAlive = false;
      for (const [socket, connection] of connections) if (connection.inFlight === 0) closeWhenIdle(socket, connection);
      check();
    });
  return { stopAccepting, drain };
}
