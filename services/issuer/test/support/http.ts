import http from 'node:http';

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface RawRequest {
  readonly method?: string;
  /** Sent exactly as given: nothing (no Origin, no User-Agent) is added. */
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Gives up (rejects) when no complete answer arrived within this many milliseconds. */
  readonly timeoutMs?: number;
}

/**
 * One HTTP request over a fresh connection, with full control of the headers (fetch may
 * add some of its own, such as Origin). Redirects are not followed.
 */
export function request(url: string, { method = 'GET', headers = {}, body, timeoutMs }: RawRequest = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      url,
      {
        method,
        agent: false,
        headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    outgoing.on('error', reject);
    if (timeoutMs !== undefined) {
      outgoing.setTimeout(timeoutMs, () => outgoing.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    }
    outgoing.end(body);
  });
}

/** The names of the response's CORS headers (`access-control-*`), sorted. */
export function corsHeaderNames(response: RawResponse): string[] {
  return Object.keys(response.headers)
    .filter((name) => name.startsWith('access-control-'))
    .sort();
}

/** `Authorization: Basic …` for a client id and secret (RFC 6749 §2.3.1). */
export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/**
 * Polls `check` until it returns a value (not undefined), for at most `timeoutMs`.
 * @throws when the time runs out
 */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Polls `check` until it is true, for at most `timeoutMs`; answers whether it became true. */
export function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  return eventually(async () => ((await check()) ? true : undefined), timeoutMs, intervalMs).catch(() => false);
}
