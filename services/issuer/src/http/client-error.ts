import type { Server } from 'node:http';
import type { Socket } from 'node:net';

import { errorBody } from '../oidc/errors.js';

/**
 * What node's HTTP parser refuses before any listener runs (a malformed request line, an
 * unknown method, raw bytes above 0x7F in the target, headers over the size limit) gets the
 * same kind of answer as what the input gate refuses: RFC 6749 JSON, `invalid_request`, with
 * the headers that forbid sniffing and caching, and the connection closed. Node's default is a
 * bare `400 Bad Request` with no body.
 */
export function answerUnparsableRequests(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // nothing to answer: the peer is gone, or the request was answered already
    if (error.code === 'ECONNRESET' || !socket.writable || (socket as { _httpMessage?: unknown })._httpMessage !== undefined) {
      socket.destroy();
      return;
    }
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify(
      errorBody('invalid_request', tooLarge ? 'the request headers are too large' : 'the request could not be parsed as HTTP'),
    );
    socket.end(
      [
        `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}`,
        'Content-Type: application/json; charset=utf-8',
        `Content-Length: ${Buffer.byteLength(body)}`,
        'Cache-Control: no-store',
        'X-Content-Type-Options: nosniff',
        'Connection: close',
        '',
        body,
      ].join('\r\n'),
    );
  });
}
