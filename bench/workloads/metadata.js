// @ts-check
/** The issuer's metadata: its JWKS (RFC 7517) and its OpenID Connect discovery document. */
import { httpRow } from './measure.js';

export const jwks = httpRow({
  id: 'jwks',
  label: 'JWKS GET',
  baseline: null,
  workload: (context) => ({ url: context.stack.endpoints.jwks }),
});

export const discovery = httpRow({
  id: 'discovery',
  label: 'discovery GET',
  baseline: null,
  workload: (context) => ({ url: context.stack.endpoints.discovery }),
});
