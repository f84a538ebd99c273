/** The configuration every Sigil resource service reads from its environment.
 *
 * @example
 * ```ts
 * const { port, issuer, audience, guardClient } = resourceServiceConfig(process.env, { port: 4001, audience: 'http://localhost:4001' });
 * ```
 */
export interface ResourceServiceConfig {
  readonly port: number;
  /** The issuer's base URL; discovery, JWKS and introspection are found from it. */
  readonly issuer: string;
  /** This service's own resource URI: the `aud` its tokens must carry. */
  readonly audience: string;
  /** This service's client, used to introspect API keys; API keys are off without it. */
  readonly guardClient: { readonly clientId: string; readonly clientSecret: string } | undefined;
  /** Milliseconds between two reads of the issuer's revocation feed (with a guard client). */
  readonly revocationPollMs: number;
  /**
   * The service's public base URL when a proxy in front of it changes the scheme, host or path
   * (the URL clients call, which their DPoP proofs name); undefined: the request's own.
   */
  readonly publicUrl: string | undefined;
  readonly logLevel: string;
}

/**
 * @example
 * ```ts
 * try { resourceServiceConfig(process.env, defaults); } catch (error) { if (error instanceof ServiceConfigError) process.exit(2); }
 * ```
 */
export class ServiceConfigError extends Error {
  override name = 'ServiceConfigError';
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function absoluteUrl(value: string): boolean {
  const url = URL.parse(value);
  return url !== null && (url.protocol === 'http:' || url.protocol === 'https:') && url.hash === '';
}

/** Every environment variable `resourceServiceConfig` reads; a deployment passing others has a typo or a stale line. */
export const RESOURCE_SERVICE_VARIABLES: readonly string[] = Object.freeze([
  'PORT',
  'ISSUER',
  'AUDIENCE',
  'GUARD_CLIENT_ID',
  'GUARD_CLIENT_SECRET',
  'REVOCATION_POLL_INTERVAL_MS',
  'PUBLIC_URL',
  'LOG_LEVEL',
]);

/**
 * Reads `PORT`, `ISSUER`, `AUDIENCE`, `GUARD_CLIENT_ID`, `GUARD_CLIENT_SECRET`,
 * `REVOCATION_POLL_INTERVAL_MS`, `PUBLIC_URL` and `LOG_LEVEL`.
 * Every bad variable is named in one line.
 *
 * @example
 * ```ts
 * const config = resourceServiceConfig(process.env, { port: 4001, audience: 'http://localhost:4001' });
 * ```
 */
export function resourceServiceConfig(
  env: Readonly<Record<string, string | undefined>>,
  defaults: { readonly port: number; readonly audience: string },
): ResourceServiceConfig {
  const value = (name: string) => (env[name]?.trim() === '' ? undefined : env[name]?.trim());
  const problems: string[] = [];
  const portText = value('PORT');
  const port = portText === undefined ? defaults.port : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || (portText !== undefined && !/^\d+$/u.test(portText))) {
    problems.push(`PORT must be a whole number between 0 and 65535 (got "${portText ?? ''}")`);
  }
  const issuer = (value('ISSUER') ?? 'http://localhost:4000').replace(/\/$/u, '');
  if (!absoluteUrl(issuer)) problems.push(`ISSUER must be an absolute http(s) URL (got "${issuer}")`);
  const audience = value('AUDIENCE') ?? defaults.audience;
  if (!URL.canParse(audience)) problems.push(`AUDIENCE must be an absolute URI (got "${audience}")`);
  const clientId = value('GUARD_CLIENT_ID');
  const clientSecret = value('GUARD_CLIENT_SECRET');
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    problems.push('GUARD_CLIENT_ID and GUARD_CLIENT_SECRET must be set together');
  }
  const pollText = value('REVOCATION_POLL_INTERVAL_MS');
  const revocationPollMs = pollText === undefined ? 10_000 : Number(pollText);
  if (!/^\d+$/u.test(pollText ?? '10000') || revocationPollMs < 100 || revocationPollMs > 3_600_000) {
    problems.push(`REVOCATION_POLL_INTERVAL_MS must be a whole number of milliseconds between 100 and 3600000 (got "${pollText ?? ''}")`);
  }
  const publicUrl = value('PUBLIC_URL')?.replace(/\/$/u, '');
  if (publicUrl !== undefined && (!absoluteUrl(publicUrl) || URL.parse(publicUrl)?.search !== '')) {
    problems.push(`PUBLIC_URL must be an absolute http(s) URL without query or fragment (got "${publicUrl}")`);
  }
  const logLevel = value('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) problems.push(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')} (got "${logLevel}")`);
  if (problems.length > 0) throw new ServiceConfigError(`invalid configuration: ${problems.join('; ')}`);
  return Object.freeze({
    port,
    issuer,
    audience,
    guardClient: clientId !== undefined && clientSecret !== undefined ? { clientId, clientSecret } : undefined,
    revocationPollMs,
    publicUrl,
    logLevel,
  });
}
