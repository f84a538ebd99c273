import { VerifierUnavailable } from './errors.js';

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
}

/**
 * Finds an issuer's endpoints from its RFC 8414 metadata, once; a failure is retried on
 * the next call. The metadata must name the same issuer (RFC 8414 §3.3).
 *
 * @example
 * ```ts
 * const metadata = issuerMetadata('https://auth.example.com');
 * const { jwks_uri } = await metadata();
 * ```
 */
export function issuerMetadata(issuer: string, timeoutMs = 5000): () => Promise<IssuerMetadata> {
  let found: Promise<IssuerMetadata> | undefined;
  const discover = async (): Promise<IssuerMetadata> => {
    const response = await fetch(`${issuer.replace(/\/$/u, '')}/.well-known/oauth-authorization-server`, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new VerifierUnavailable(`issuer metadata answered ${response.status}`);
    const body = (await response.json()) as Partial<Record<string, unknown>>;
    if (body['issuer'] !== issuer || typeof body['jwks_uri'] !== 'string') {
      throw new VerifierUnavailable('issuer metadata does not describe the configured issuer');
    }
    const introspection = body['introspection_endpoint'];
    return {
      issuer,
      jwks_uri: body['jwks_uri'],
      introspection_endpoint: typeof introspection === 'string' ? introspection : undefined,
    };
  };
  return () => {
    found ??= discover().catch((error: unknown) => {
      found = undefined;
      throw error instanceof VerifierUnavailable ? error : new VerifierUnavailable('issuer metadata unreachable', { cause: error });
    });
    return found;
  };
}
