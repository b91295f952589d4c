import type { FastifyInstance, FastifyReply } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { notFound } from '../fhir/outcome.js';
import type { Database } from '../store/database.js';
import { createClient, findClient } from '../security/clients.js';

/** Where `npm install` (scripts/build-web.mjs) puts the built portal. */
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web', 'dist');

/** The portal's own files: public (they hold no data) and not audited (they disclose nothing about anyone). */
export const PORTAL_ROUTES = new Set(['/', '/portal/config.json', '/portal/:file']);

const FILES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'uplot.css': 'text/css; charset=utf-8',
};

/**
 * Strict CSP: scripts and styles only from these files (no inline script or style element, no eval), data
 * only from this origin, no framing. uPlot's and Preact's style *properties* set from script are allowed by
 * CSP (they are not inline style attributes in markup).
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The portal's public OAuth client (SMART App Launch, PKCE): what a signed-in user's token may at most hold. */
const PORTAL_SCOPE = 'openid fhirUser online_access user/*.cruds patient/*.cruds';
const SETTING = 'portal.client';

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

/** The redirect URIs the portal needs at this origin: the origin's root, and its other loopback spelling. */
function redirectUris(origin: string): string[] {
  const url = new URL(origin);
  const uris = [`${url.origin}/`];
  if (url.hostname === '127.0.0.1') uris.push(`${url.protocol}//localhost${url.port ? `:${url.port}` : ''}/`);
  if (url.hostname === 'localhost') uris.push(`${url.protocol}//127.0.0.1${url.port ? `:${url.port}` : ''}/`);
  return uris;
}

/** The portal client's id in this store, once registered. */
export async function portalClientId(db: Database): Promise<string | undefined> {
  const rows = await db.query<{ value: string }>('SELECT value FROM setting WHERE key = ?', [SETTING]);
  return rows[0]?.value;
}

/**
 * Registers (once per store) the portal's public client, and makes sure it may send users back to this
 * server's origin: the origin is known only once the server listens, so this runs on the first request.
 */
export async function ensurePortalClient(db: Database, origin: string): Promise<string> {
  const wanted = redirectUris(origin);
  const rows = await db.query<{ value: string }>('SELECT value FROM setting WHERE key = ?', [SETTING]);
  const existing = rows[0] ? await findClient(db, rows[0].value) : undefined;
  if (!existing) {
    const client = await createClient(db, { name: 'Tessera portal', scope: PORTAL_SCOPE, redirectUris: wanted, public: true });
    if (rows[0]) await db.run('UPDATE setting SET value = ? WHERE key = ?', [client.clientId, SETTING]);
    else await db.run('INSERT INTO setting (key, value) VALUES (?, ?)', [SETTING, client.clientId]);
    return client.clientId;
  }
  // A portal registered before sessions survived a reload lacks online_access (its refresh token).
  if (existing.scope !== PORTAL_SCOPE) await db.run('UPDATE oauth_client SET scope = ? WHERE id = ?', [PORTAL_SCOPE, existing.id]);
  const missing = wanted.filter((u) => !existing.redirectUris.includes(u));
  if (missing.length) {
    await db.run('UPDATE oauth_client SET redirect_uris = ? WHERE id = ?', [JSON.stringify([...existing.redirectUris, ...missing]), existing.id]);
  }
  return existing.id;
}

/** Serves the portal at `/` (built files from web/dist) and its configuration (which client, which endpoints). */
export function registerPortalRoutes(app: FastifyInstance, db: Database, origin: () => string): void {
  const cache = new Map<string, Buffer>();
  const file = (name: string): Buffer | undefined => {
    let body = cache.get(name);
    if (!body && existsSync(join(DIST, name))) {
      body = readFileSync(join(DIST, name));
      cache.set(name, body);
    }
    return body;
  };
  const clients = new Map<string, Promise<string>>();

  app.get('/', async (_req, reply) => {
    const html = file('index.html');
    if (!html) {
      return secure(reply).status(503).type('text/plain; charset=utf-8').send('The portal is not built: run `npm install` (or `node scripts/build-web.mjs`).');
    }
    return secure(reply).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
  });

  app.get('/portal/config.json', async (_req, reply) => {
    const base = origin();
    let clientId = clients.get(base);
    if (!clientId) {
      clientId = ensurePortalClient(db, base);
      clients.set(base, clientId);
      clientId.catch(() => clients.delete(base));
    }
    return secure(reply)
      .header('cache-control', 'no-store')
      .send({ clientId: await clientId, fhirBase: `${base}/fhir`, authorize: `${base}/oauth/authorize`, token: `${base}/oauth/session`, signOut: `${base}/oauth/session/end` });
  });

  app.get<{ Params: { file: string } }>('/portal/:file', async (req, reply) => {
    const type = Object.hasOwn(FILES, req.params.file) ? FILES[req.params.file] : undefined;
    const body = type ? file(req.params.file) : undefined;
    if (!type || !body) {
      throw notFound(`No such portal file: ${req.params.file}`);
    }
    return secure(reply).header('cache-control', 'no-cache').type(type).send(body);
  });
}
