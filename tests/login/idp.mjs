// A stand-in for Keycloak in the login tests: panva's oidc-provider (certified OpenID Connect
// provider) with the enclave hub's client and demo people carrying a `groups` claim, as the
// realm export in deploy/keycloak/ configures Keycloak.
//
// Usage: node idp.mjs <config.json>; the JSON holds {port, issuer, client: {client_id,
// client_secret, redirect_uris}, users: {username: {password, name, email, groups}}}.
// It prints one line "ready <issuer>" once it listens. Passwords are checked here (as
// Keycloak would), consent is implicit for the hub (a first-party client, as in the realm).

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { users } = config;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function passwordMatches(user, password) {
  const wanted = Buffer.from(String(user.password));
  const given = Buffer.from(String(password));
  return wanted.length === given.length && timingSafeEqual(wanted, given);
}

const provider = new Provider(config.issuer, {
  clients: [{
    client_id: config.client.client_id,
    client_secret: config.client.client_secret,
    redirect_uris: config.client.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  // The realm's group mapper puts `groups` in the userinfo; here it comes with `profile`,
  // the scope the hub asks for (Keycloak: a default client scope of the hub's client).
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'groups'],
    email: ['email'],
  },
  async findAccount(ctx, id) {
    const user = Object.hasOwn(users, id) ? users[id] : undefined;
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, preferred_username: id, name: user.name, email: user.email,
          groups: user.groups,
        };
      },
    };
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  async loadExistingGrant(ctx) {
    // First-party client: the grant the hub asks for is given without a consent page.
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
});

function loginPage(uid, message) {
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Connexion - IdP de test</title></head><body>
<h1>Connexion (fournisseur d'identité de test)</h1>
${message ? `<p id="error">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="username">Identifiant</label><input id="username" name="username" autocomplete="username">
<label for="password">Mot de passe</label><input id="password" name="password" type="password">
<button type="submit" id="kc-login">Se connecter</button>
</form></body></html>`;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 10000) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid || details.prompt.name !== 'login') {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('unexpected interaction');
    return;
  }
  if (action === 'login' && req.method === 'POST') {
    const form = await readBody(req);
    const username = form.get('username') || '';
    const user = Object.hasOwn(users, username) ? users[username] : undefined;
    if (!user || !passwordMatches(user, form.get('password') || '')) {
      res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginPage(uid, 'Identifiant ou mot de passe incorrect.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: username } },
      { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(loginPage(uid, ''));
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec(req.url.split('?')[0]);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((error) => {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction failed: ${error.message}`);
  });
});
server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`ready ${config.issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
