import type { AccessToken, ClientCredentials, Provider } from 'oidc-provider';

import type { AdminEvent, AuditStore, AuthEvent } from './domain/audit.js';
import type { ThrottleStore } from './domain/login-throttle.js';
import type { Logger } from './logger.js';

/**
 * One log line per security event, at `info`, each with an `event` field naming it (README,
 * "Observability"):
 *
 * - `token.issued`: an access token (every grant, the engine's and Sigil's own).
 * - `login.success`, `login.failure`, `login.locked`, `login.throttled`: the sign-in events of the
 *   audit trail (password grant and login form), one line for each event recorded.
 * - `admin.change`: an admin change, once it is committed (HTTP admin API and admin socket).
 *
 * Never a token, a code, a password or a secret: only identifiers and names.
 */
export type LoggedEvent = 'token.issued' | AuthEvent['event'] | 'admin.change';

/** The grant of a token's `gty` (a refreshed token's is "<original> refresh_token": the last one). */
function grantOf(gty: string | undefined, fallback: string): string {
  if (gty === undefined || gty === '') return fallback;
  const last = gty.lastIndexOf(' ');
  return last === -1 ? gty : gty.slice(last + 1);
}

function audienceOf(token: AccessToken | ClientCredentials): string | string[] | undefined {
  return token.resourceServer?.audience ?? token.aud;
}

/**
 * Logs every access token the engine makes. A JWT access token (one for a resource server) is
 * `issued` and its `jti` is only an identifier; an opaque one (for userinfo alone) is `saved`,
 * and its `jti` is the token itself: never logged. The listener does no I/O: one log call.
 */
export function logIssuedTokens(provider: Provider, logger: Logger): void {
  const line = (token: AccessToken | ClientCredentials, grantType: string, sub: string | undefined, jwt: boolean) => {
    logger.info(
      {
        event: 'token.issued' satisfies LoggedEvent,
        client_id: token.clientId,
        grant_type: grantType,
        ...(sub === undefined ? {} : { sub }),
        aud: audienceOf(token),
        ...(jwt ? { jti: token.jti } : {}),
        scope: token.scope,
        format: jwt ? 'jwt' : 'opaque',
      },
      'token issued',
    );
  };
  provider.on('access_token.issued', (token) => line(token, grantOf(token.gty, 'unknown'), token.accountId, true));
  provider.on('access_token.saved', (token) => line(token, grantOf(token.gty, 'unknown'), token.accountId, false));
  provider.on('client_credentials.issued', (token) => line(token, 'client_credentials', undefined, true));
  provider.on('client_credentials.saved', (token) => line(token, 'client_credentials', undefined, false));
}

const SIGN_IN_MESSAGES: Readonly<Record<AuthEvent['event'], string>> = {
  'login.success': 'sign-in succeeded',
  'login.failure': 'sign-in failed',
  'login.locked': 'sign-in locked',
  'login.throttled': 'sign-in refused by the throttle',
};

/**
 * The audit trail's sign-in events, each also as one log line once it is recorded: by the audit
 * trail's `append`, or by the throttle's settlement that writes the attempt's event in the same
 * statement. The username is logged only with a user id (an account that exists): what was
 * typed for an unknown one may be a password entered in the wrong field.
 */
export function loggedSignInStores(stores: { readonly audit: AuditStore; readonly throttle: ThrottleStore }, logger: Logger, onLocked?: (event: AuthEvent) => void): { audit: AuditStore; throttle: ThrottleStore } {
  const { audit, throttle } = stores;
  const log = (event: AuthEvent | undefined) => {
    if (event === undefined) return;
    if (event.event === 'login.locked') onLocked?.(event);
    logger.info(
      {
        event: event.event satisfies LoggedEvent,
        ...(event.userId === undefined ? {} : { sub: event.userId, username: event.username }),
        client_id: event.clientId,
        ip: event.ip,
        ...event.detail,
      },
      SIGN_IN_MESSAGES[event.event],
    );
  };
  return {
    audit: {
      ...audit,
      async append(event) {
        await audit.append(event);
        log(event);
      },
    },
    throttle: {
      ...throttle,
      async countFailure(keys, held, rules, now, recorded) {
        const counted = await throttle.countFailure(keys, held, rules, now, recorded);
        log(recorded);
        return counted;
      },
      async clearAccount(keys, held, now, recorded) {
        await throttle.clearAccount(keys, held, now, recorded);
        log(recorded);
      },
      async release(keys, held, recorded) {
        await throttle.release(keys, held, recorded);
        log(recorded);
      },
    },
  };
}

/** One committed admin change: who made it, what it was, which object it changed (never its detail). */
export function logAdminChange(logger: Logger, event: AdminEvent): void {
  logger.info(
    {
      event: 'admin.change' satisfies LoggedEvent,
      type: event.type,
      actor: event.actor,
      object: event.object,
      ...(event.userId === undefined ? {} : { user_id: event.userId }),
      ...(event.username === undefined ? {} : { username: event.username }),
      ...(event.clientId === undefined ? {} : { client_id: event.clientId }),
    },
    'admin change',
  );
}
