import { createTokenExchanger, ServiceConfigError, TokenExchangeFailed, type ResourceServiceConfig } from '@sigil/resource-kit';

/**
 * orders-api's view of reports-api, which `GET /orders/summary` calls on behalf of its caller.
 *
 * @example
 * ```ts
 * const reports = reportsConfig(process.env); // { url: 'http://localhost:4002', audience: 'http://localhost:4002' }
 * ```
 */
export interface ReportsConfig {
  /** Where reports-api answers (`REPORTS_URL`). */
  readonly url: string;
  /** reports-api's resource URI, the audience of the tokens exchanged for it (`REPORTS_AUDIENCE`, default `REPORTS_URL`). */
  readonly audience: string;
}

const DEFAULT_REPORTS_URL = 'http://localhost:4002';

/** The variables `reportsConfig` reads, on top of every resource service's. */
export const REPORTS_VARIABLES: readonly string[] = Object.freeze(['REPORTS_URL', 'REPORTS_AUDIENCE']);

/** Reads `REPORTS_URL` and `REPORTS_AUDIENCE`; a bad value is a ServiceConfigError naming it. */
export function reportsConfig(env: Readonly<Record<string, string | undefined>>): ReportsConfig {
  const value = (name: string) => (env[name]?.trim() === '' ? undefined : env[name]?.trim());
  const url = (value('REPORTS_URL') ?? DEFAULT_REPORTS_URL).replace(/\/$/u, '');
  const audience = value('REPORTS_AUDIENCE') ?? url;
  const parsed = URL.parse(url);
  const problems = [
    ...(parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hash !== '' ? [`REPORTS_URL must be an absolute http(s) URL (got "${url}")`] : []),
    ...(URL.canParse(audience) ? [] : [`REPORTS_AUDIENCE must be an absolute URI (got "${audience}")`]),
  ];
  if (problems.length > 0) throw new ServiceConfigError(`invalid configuration: ${problems.join('; ')}`);
  return Object.freeze({ url, audience });
}

/** Why a summary has no reports: the status orders-api answers, an RFC 6749-style code and a description. */
export class ReportsUnavailable extends Error {
  override name = 'ReportsUnavailable';
  constructor(
    readonly status: 502 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What reports-api answered: its reports and who it saw (the person, and orders-api acting for them). */
export type ReportsAnswer = Record<string, unknown>;

/**
 * Calls reports-api on behalf of the person whose token orders-api was sent: the token is
 * exchanged (RFC 8693) for one for reports-api, as orders-api's own client, and that token is
 * presented to reports-api. The person stays the `sub`; orders-api becomes the `act`.
 */
export function reportsClient(config: ResourceServiceConfig, reports: ReportsConfig, timeoutMs = 5000): (subjectToken: string) => Promise<ReportsAnswer> {
  const client = config.guardClient;
  const exchanger = client === undefined ? undefined : createTokenExchanger({ issuer: config.issuer, client, resource: reports.audience, timeoutMs });
  return async (subjectToken) => {
    if (exchanger === undefined) throw new ReportsUnavailable(503, 'temporarily_unavailable', 'reports need orders-api\'s own client (GUARD_CLIENT_ID) to exchange tokens');
    let accessToken: string;
    try {
      ({ accessToken } = await exchanger.exchange(subjectToken));
    } catch (error) {
      if (!(error instanceof TokenExchangeFailed)) throw error;
      if (error.refusal === undefined) throw new ReportsUnavailable(503, 'temporarily_unavailable', 'the issuer cannot be reached for a token exchange');
      throw new ReportsUnavailable(502, 'bad_gateway', `the issuer refused to exchange the token for reports-api: ${error.refusal}`);
    }
    let response: Response;
    try {
      response = await fetch(`${reports.url}/reports`, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
    } catch {
      throw new ReportsUnavailable(503, 'temporarily_unavailable', 'reports-api cannot be reached');
    }
    const body: unknown = await response.json().catch(() => undefined);
    if (response.status !== 200 || typeof body !== 'object' || body === null) {
      throw new ReportsUnavailable(502, 'bad_gateway', `reports-api answered ${response.status}`);
    }
    return body as ReportsAnswer;
  };
}
