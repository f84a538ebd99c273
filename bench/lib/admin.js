// @ts-check
/**
 * Sigil's HTTP admin API (services/issuer/src/admin/http) as the bench calls it: an access token
 * for the audience `<ISSUER>/admin` (client credentials, scope `sigil:admin`), and the body of a
 * `POST /admin/v1/clients` that registers a machine client.
 */
import { asRecord, basic, FORM, form, once } from './http.js';

/** Where the issuer serves its admin API. */
export const ADMIN_API_PATH = '/admin/v1';
/** The scope that allows every admin operation, writes included. */
export const ADMIN_SCOPE = 'sigil:admin';
export const JSON_TYPE = 'application/json';

/**
 * The admin API's resource URI (RFC 8707), the audience of its tokens.
 * @param {string} issuer the issuer's ISSUER
 */
export const adminAudience = (issuer) => `${issuer}/admin`;

/**
 * An access token for the admin API, from the issuer's token endpoint.
 * @param {string} tokenUrl
 * @param {string} issuer the issuer's ISSUER
 * @param {{ id: string, secret: string }} client a client with the client credentials grant, scope sigil:admin and resource `<ISSUER>/admin`
 * @returns {Promise<string>}
 */
export async function adminToken(tokenUrl, issuer, client) {
  const answer = await once(tokenUrl, {
    method: 'POST',
    headers: { authorization: basic(client.id, client.secret), 'content-type': FORM },
    body: form({ grant_type: 'client_credentials', resource: adminAudience(issuer), scope: ADMIN_SCOPE }),
  });
  const token = answer.ok ? asRecord(JSON.parse(answer.text))['access_token'] : undefined;
  if (typeof token !== 'string') throw new Error(`no admin API token: ${answer.status} ${answer.text.slice(0, 300)}`);
  return token;
}

/**
 * The body of `POST /admin/v1/clients` for a machine client named `name` (wire names: `scope`
 * is a space-separated string, as in every view).
 * @param {string} name
 * @param {string} resource the audience its tokens are for
 */
export const machineClientBody = (name, resource) => JSON.stringify({ name, grants: ['client_credentials'], scope: 'orders:read', resources: [resource] });

/**
 * The credentials in a `201 Created` answer of `POST /admin/v1/clients`.
 * @param {string} text the answer's body
 */
export function createdClient(text) {
  const created = asRecord(JSON.parse(text));
  const id = created['client_id'];
  const secret = created['client_secret'];
  if (typeof id !== 'string' || typeof secret !== 'string') throw new Error(`POST /admin/v1/clients answered without client_id/client_secret: ${text.slice(0, 300)}`);
  return { id, secret };
}
