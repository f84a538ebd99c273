// @ts-check
/* global AbortSignal -- Node's global, missing from the shared ESLint globals */
/** Request bodies and headers the workloads send, and one request outside the load generator. */
import { URLSearchParams } from 'node:url';

export const FORM = 'application/x-www-form-urlencoded';

/**
 * `client_secret_basic` (RFC 6749, section 2.3.1): both parts form-encoded, then base64.
 * @param {string} id
 * @param {string} secret
 */
export const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** @param {Record<string, string>} fields */
export const form = (fields) => new URLSearchParams(fields).toString();

/** @typedef {{ method?: string, headers?: Record<string, string>, body?: string }} RequestInit */

/**
 * One request outside the load generator: the status and (for a failure) the body.
 * @param {string} url
 * @param {RequestInit} [init]
 */
export async function once(url, init = {}) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return { status: response.status, ok: response.ok, text };
}

/**
 * A parsed JSON answer as an object whose fields are read one by one (anything else: no fields).
 * @param {unknown} value
 */
export const asRecord = (value) => /** @type {Record<string, unknown>} */ (typeof value === 'object' && value !== null ? value : {});
