// @ts-check
/**
 * `token_exchange`: RFC 8693 token exchange at the token endpoint, as a resource service's own
 * client (the token exchange grant, orders-api's audience as its resource, one exchange target)
 * exchanges a person's access token for orders-api into one for the target: client
 * authentication, the subject token's verification, introspection's withdrawal rule (its grant
 * alive, nothing revoked), the person's read, the grant's exchange audience (a read once it is
 * recorded) and an RS256 signature. One subject token, from one password grant before the row,
 * is presented in every request, as a service does for the calls it makes during one request of
 * its caller. Its baseline is the client credentials row of the same run.
 */
import { ADMIN_API_PATH, createdClient } from '../lib/admin.js';
import { asRecord, basic, FORM, form, once } from '../lib/http.js';
import { progress } from '../lib/log.js';
import { AUDIENCE } from '../setup.js';
import { check, measureHttp, skip } from './measure.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** The exchange target: no service needs to listen there for the exchange itself. */
const TARGET = 'http://localhost:4002';

/**
 * Registers the exchanging client over the admin API. It declares orders:read for AUDIENCE as
 * the bench's tokens already carry it (a service's own client with the token exchange grant
 * alone declares its audience's scopes), so the rows after this one see the same scopes.
 * @param {import('./measure.js').Context} context
 */
async function exchangingClient(context) {
  const answer = await once(`${context.stack.urls.issuer}${ADMIN_API_PATH}/clients`, {
    method: 'POST',
    headers: context.requests.admin,
    body: JSON.stringify({ name: 'bench-exchange', grants: [GRANT], scope: 'orders:read', resources: [AUDIENCE], may_exchange_for: [TARGET] }),
  });
  if (answer.status !== 201) throw new Error(`POST /admin/v1/clients (token exchange client) answered ${answer.status}: ${answer.text.slice(0, 300)}`);
  return createdClient(answer.text);
}

/** @type {import('./measure.js').RowSpec} */
export const tokenExchange = {
  id: 'token_exchange',
  label: 'token exchange POST /token (RFC 8693, a person\'s token)',
  baseline: 'client_credentials',
  needs: 'client_credentials',
  run: async (context) => {
    const tokenUrl = context.stack.endpoints.token;
    const signedIn = await once(tokenUrl, context.requests.password);
    const subjectToken = signedIn.ok ? asRecord(JSON.parse(signedIn.text))['access_token'] : undefined;
    if (typeof subjectToken !== 'string') {
      skip(context, 'token_exchange', `no subject token: the password grant answered ${signedIn.status}`);
      return;
    }
    const client = await exchangingClient(context);
    const request = {
      method: 'POST',
      headers: { authorization: basic(client.id, client.secret), 'content-type': FORM },
      body: form({ grant_type: GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, resource: TARGET }),
    };
    const answer = await check(context.preflight, 'token_exchange', tokenUrl, request);
    if (!answer.ok) {
      skip(context, 'token_exchange', `the preflight exchange answered ${answer.status}`);
      return;
    }
    progress('token exchange client registered; one subject token for every request');
    await measureHttp(context, tokenExchange, { url: tokenUrl, ...request }, { target: TARGET, subjectTokens: 1 });
  },
};
