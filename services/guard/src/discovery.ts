import { IssuerMetadataRefused, VerifierUnavailable } from './errors.js';

/** The parts of RFC 8414 metadata the guard uses.
 *
 * @example
 * ```ts
 * const { jwks_uri, introspection_endpoint }: IssuerMetadata = await issuerMetadata(issuer)();
 * ```
 */
export interface IssuerMetadata {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly introspection_endpoint: string | undefined;
  /** Where a service's own client asks for tokens (a token exchange, RFC 8693); the guard itself never calls it. */
  readonly token_endpoint: string | undefined;
}

/**
 * @example
 * ```ts
 * issuerMetadata('https://auth.example.com', { timeoutMs: 3000, onRefused: (error) => logger.warn({ reason: error.reason }, 'issuer metadata refused') });
 * ```
 */
export interface IssuerMetadataOptions {
  /** Timeout of one metadata request. Default 5 s. */
  readonly timeoutMs?: number;
  /** Metadata without `introspection_endpoint` is refused (the guard resolves API keys). Default false. */
  readonly introspectionRequired?: boolean;
  /** Told once per distinct reason when the issuer answers with metadata that cannot be used. */
  readonly onRefused?: (error: IssuerMetadataRefused) => void;
}

/** Statuses that say "not now" rather than "not here": retried like an unreachable issuer. */
const TRANSIENT_STATUS = (status: number) => status >= 500 || status === 408 || status === 429;

/**
 * An endpoint the metadata names, which the guard fetches (JWKS) or sends its client secret to
 * (introspection): only on the issuer's own origin (scheme, host and port), so metadata cannot
 * send either elsewhere.
 */
function onIssuerOrigin(issuer: string, member: string, value: unknown): string {
  const url = typeof value === 'string' ? URL.parse(value) : null;
  if (url === null || url.origin !== new URL(issuer).origin) {
    throw new IssuerMetadataRefused(`issuer metadata's ${member} ${JSON.stringify(value)} is not on the issuer's origin ${new URL(issuer).origin}`);
  }
  return url.href;
}

/** Reads the metadata document once: VerifierUnavailable if the issuer could not answer, IssuerMetadataRefused if its answer is unusable. */
async function discover(issuer: string, { timeoutMs = 5000, introspectionRequired = false }: IssuerMetadataOptions): Promise<IssuerMetadata> {
  const url = `${issuer.replace(/\/$/u, '')}/.well-known/oauth-authorization-server`;
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new VerifierUnavailable('issuer metadata unreachable', { cause: error });
  }
  if (TRANSIENT_STATUS(response.status)) throw new VerifierUnavailable(`issuer metadata answered ${response.status}`);
  if (response.status >= 300 && response.status < 400) {
    throw new IssuerMetadataRefused(`${url} redirects to ${response.headers.get('location') ?? 'elsewhere'}: ISSUER must be the issuer's own identifier`);
  }
  if (response.status !== 200) throw new IssuerMetadataRefused(`${url} answered ${response.status}: no authorization server metadata there`);
  const body: unknown = await response.json().catch(() => undefined);
  if (typeof body !== 'object' || body === null) throw new IssuerMetadataRefused(`${url} answered something other than a JSON object`);
  const members = body as Partial<Record<string, unknown>>;
  // RFC 8414 §3.3: the metadata must name exactly the issuer it was asked for
  if (members['issuer'] !== issuer) {
    throw new IssuerMetadataRefused(`issuer metadata names issuer ${JSON.stringify(members['issuer'])}, not the configured ${JSON.stringify(issuer)} (check ISSUER)`);
  }
  const introspection = members['introspection_endpoint'];
  if (introspection === undefined && introspectionRequired) {
    throw new IssuerMetadataRefused('issuer metadata has no introspection_endpoint, which API keys need');
  }
  return {
    issuer,
    jwks_uri: onIssuerOrigin(issuer, 'jwks_uri', members['jwks_uri']),
    introspection_endpoint: introspection === undefined ? undefined : onIssuerOrigin(issuer, 'introspection_endpoint', introspection),
    // a client secret is sent there too
    token_endpoint: members['token_endpoint'] === undefined ? undefined : onIssuerOrigin(issuer, 'token_endpoint', members['token_endpoint']),
  };
}

/**
 * Finds an issuer's endpoints from its RFC 8414 metadata. Good metadata is read once and kept
 * for the life of the process; a failure is not kept, so the next call asks again (concurrent
 * calls share one request). An unreachable issuer throws VerifierUnavailable; metadata that
 * names another issuer, or endpoints off the issuer's origin, throws IssuerMetadataRefused and
 * is never used.
 *
 * @example
 * ```ts
 * const metadata = issuerMetadata('https://auth.example.com');
 * const { jwks_uri } = await metadata();
 * ```
 */
export function issuerMetadata(issuer: string, options: IssuerMetadataOptions = {}): () => Promise<IssuerMetadata> {
  const { onRefused } = options;
  const told = new Set<string>();
  let found: Promise<IssuerMetadata> | undefined;
  return () => {
    found ??= discover(issuer, options).catch((error: unknown) => {
      found = undefined;
      if (error instanceof IssuerMetadataRefused && !told.has(error.reason)) {
        // bounded: the reasons quote what the issuer answered
        if (told.size >= 32) told.clear();
        told.add(error.reason);
        onRefused?.(error);
      }
      throw error instanceof VerifierUnavailable ? error : new VerifierUnavailable('issuer metadata unreachable', { cause: error });
    });
    return found;
  };
}
