// @ts-check
/*
 * A relying party as an application would write one: express with Auth0's
 * express-openid-connect, on 127.0.0.1:$PORT. Its own process, under plain node: the library
 * `require`s openid-client, an ES module, which node loads and jest's module runtime does not.
 * $RP_CONFIG is the JSON of the library's options, less `baseURL`. `GET /me` answers what the
 * library says of the session; an error (a refused callback) is answered as text,
 * `error: <message>`. `GET /user` answers the library's `req.oidc.user` (the ID token's claims).
 * `GET /api-token` answers the session's access token, as the app would send it to its API.
 * `GET /userinfo` answers `fetchUserInfo()`, with the token for userinfo a refresh that asks for
 * the OpenID scopes only gets, then refreshes again for the API's token (README, "Use it from
 * your stack"). `GET /signed-out`, where the tests send the browser back after logout,
 * answers `signed out`. Prints `listening` once it accepts connections.
 */
import express from 'express';
import { auth } from 'express-openid-connect';

const port = Number(process.env['PORT']);
/** @type {import('express-openid-connect').ConfigParams} */
const options = JSON.parse(process.env['RP_CONFIG'] ?? '{}');

const app = express();
app.use(auth({ ...options, baseURL: `http://127.0.0.1:${port}` }));
app.get('/me', (req, res) => {
  res.json({ authenticated: req.oidc.isAuthenticated(), sub: req.oidc.user?.['sub'] ?? null });
});
app.get('/user', (req, res) => {
  res.json(req.oidc.user ?? null);
});
app.get('/api-token', (req, res) => {
  res.json({ access_token: req.oidc.accessToken?.access_token ?? null });
});
app.get('/userinfo', async (req, res, next) => {
  try {
    const accessToken = req.oidc.accessToken;
    if (accessToken === undefined) throw new Error('no access token in the session');
    // the session's token is for the API; userinfo takes a token for itself only
    await accessToken.refresh({ tokenEndpointParams: { scope: 'openid profile email' } });
    const userinfo = await req.oidc.fetchUserInfo();
    // and back to a token for the API (the grant's resource: no scope parameter)
    await req.oidc.accessToken?.refresh();
    res.json(userinfo);
  } catch (error) {
    next(error);
  }
});
app.get('/signed-out', (_req, res) => {
  res.type('text/plain').send('signed out');
});
/**
 * @param {unknown} error
 * @param {import('express').Request} _req
 * @param {import('express').Response} res
 * @param {import('express').NextFunction} _next
 * @returns {void}
 */
const failed = (error, _req, res, _next) => {
  res.status(400).type('text/plain').send(`error: ${error instanceof Error ? error.message : String(error)}`);
};
app.use(failed);
app.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
