import type { IncomingMessage } from 'node:http';

import { describe, expect, it } from '@jest/globals';

import { clientAddress, trustProxy } from '../../src/http/client-address.js';

/** A request from `peer`, through the proxies named in X-Forwarded-For (the client first). */
const from = (peer: string, forwardedFor?: string) =>
  ({ socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } }) as unknown as IncomingMessage;

describe('client address under TRUST_PROXY (express\'s `trust proxy` meanings)', () => {
  it('false (the default) and 0 trust no proxy: X-Forwarded-For is ignored', () => {
    for (const setting of [false, 0]) expect(clientAddress(from('10.0.0.9', '203.0.113.7'), trustProxy(setting))).toBe('10.0.0.9');
  });

  it('true trusts every hop: the leftmost address', () => {
    expect(clientAddress(from('10.0.0.9', '203.0.113.7, 198.51.100.1'), trustProxy(true))).toBe('203.0.113.7');
  });

  it('a hop count trusts that many proxies, nearest first', () => {
    const request = from('10.0.0.9', '203.0.113.7, 198.51.100.1');
    expect(clientAddress(request, trustProxy(1))).toBe('198.51.100.1');
    expect(clientAddress(request, trustProxy(2))).toBe('203.0.113.7');
  });

  it('a list of addresses and subnets trusts only those: a forged hop from outside them is the client', () => {
    const trust = trustProxy('loopback, 10.0.0.0/8');
    expect(clientAddress(from('10.0.0.9', '203.0.113.7'), trust)).toBe('203.0.113.7');
    expect(clientAddress(from('10.0.0.9', '1.2.3.4, 203.0.113.7'), trust)).toBe('203.0.113.7');
    expect(clientAddress(from('198.51.100.1', '203.0.113.7'), trust)).toBe('198.51.100.1');
  });
});
