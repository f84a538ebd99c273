import net from 'node:net';

import { describe, expect, it } from '@jest/globals';

import { embedded } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';

/** Writes raw bytes to the issuer and reads until it closes the connection. */
function rawExchange(port: number, request: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.end(request);
  });
}

/**
 * What node's HTTP parser refuses before any listener runs (http/client-error.ts): the input
 * gate never sees it, yet it must be answered like the gate's refusals, not with node's bare 400.
 * The parser is the same whatever the database, so one back end suffices.
 */
describe('requests node cannot parse as HTTP', () => {
  const suite = issuerSuite(embedded);

  it.each([
    ['an unknown method', Buffer.from('BREW /token HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a raw byte above 0x7F in the target', Buffer.concat([Buffer.from('GET /tok'), Buffer.from([0xff]), Buffer.from('en HTTP/1.1\r\nHost: x\r\n\r\n')])],
    ['a NUL in a header value', Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', 'latin1')],
    ['garbage instead of a request line', Buffer.from('\u0001\u0002\u0003 not http\r\n\r\n', 'latin1')],
  ])('when a request has %s, answers 400 invalid_request JSON and closes', async (_name, request) => {
    const answer = await rawExchange(suite.issuer.port, request);
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/u);
    expect(answer).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/u);
    expect(answer).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/u);
    expect(answer).toMatch(/\r\nConnection: close\r\n/u);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(body).toEqual({ error: 'invalid_request', error_description: 'the request could not be parsed as HTTP' });
  });

  it('when the headers are larger than node accepts, answers 431 invalid_request JSON', async () => {
    const answer = await rawExchange(suite.issuer.port, Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(answer).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/u);
    expect(answer).toContain('"error":"invalid_request"');
  });

  it('after such a request, the issuer keeps serving', async () => {
    const response = await fetch(`${suite.issuer.url}/healthz`);
    expect(response.status).toBe(200);
  });
});
