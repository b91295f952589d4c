import { randomUUID } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import type { Database, SqlExecutor } from '../store/database.js';
import { parseScope } from './scopes.js';
import { generateSecret, hashSecret } from './secrets.js';

export interface OAuthClient {
  id: string;
  name: string;
  secretHash: string | null;
  scope: string;
  jwks: JSONWebKeySet | null;
  disabled: boolean;
  /** Where the authorization endpoint may send users back to (SMART App Launch); exact match. */
  redirectUris: string[];
  /** A public client (a browser or native app) has no secret: PKCE alone binds its codes. */
  publicClient: boolean;
  /** The purposes of use it may declare; null: any. */
  purposes: string[] | null;
}

export interface NewClient {
  clientId: string;
  clientSecret?: string;
  name: string;
  scope: string;
  redirectUris?: string[];
  public?: boolean;
}

/** https, or http to a loopback address (native apps, development); no fragment (RFC 6749 §3.1.2). */
function checkRedirectUri(uri: string): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`Invalid redirect URI "${uri}"`);
  }
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  if (url.hash || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
    throw new Error(`Redirect URI "${uri}" must be https (or http on a loopback address) and have no fragment`);
  }
}

/** Registers a client. With a JWKS it authenticates by signed assertion (private_key_jwt), else by secret. */
export async function createClient(
  db: Database,
  options: { name: string; scope: string; jwks?: JSONWebKeySet; redirectUris?: string[]; public?: boolean; /** Purposes of use it may declare (default any). */ purposes?: string[] },
): Promise<NewClient> {
  for (const s of options.scope.split(/\s+/).filter(Boolean)) {
    if (parseScope(s) === undefined) {
      throw new Error(`Invalid scope "${s}" (expected e.g. system/Patient.rs or system/*.cruds)`);
    }
  }
  if (options.jwks && !Array.isArray(options.jwks.keys)) {
    throw new Error('JWKS must be a JSON object with a "keys" array');
  }
  const redirectUris = options.redirectUris ?? [];
  redirectUris.forEach(checkRedirectUri);
  if (options.public && (options.jwks || !redirectUris.length)) {
    throw new Error('A public client needs a redirect URI and authenticates with neither secret nor JWKS');
  }
  const clientId = randomUUID();
  const clientSecret = options.jwks || options.public ? undefined : generateSecret();
  await db.run('INSERT INTO oauth_client (id, name, secret_hash, scope, jwks, created_at, disabled, redirect_uris, public_client, purposes) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)', [
    clientId,
    options.name,
    clientSecret ? await hashSecret(clientSecret) : null,
    options.scope,
    options.jwks ? JSON.stringify(options.jwks) : null,
    Date.now(),
    redirectUris.length ? JSON.stringify(redirectUris) : null,
    options.public ? 1 : 0,
    options.purposes ? options.purposes.join(',') : null,
  ]);
  return {
    clientId,
    clientSecret,
    name: options.name,
    scope: options.scope,
    ...(redirectUris.length ? { redirectUris } : {}),
    ...(options.public ? { public: true } : {}),
  };
}

export async function findClient(db: SqlExecutor, id: string): Promise<OAuthClient | undefined> {
  const rows = await db.query<{
    id: string;
    name: string;
    secret_hash: string | null;
    scope: string;
    jwks: string | null;
    disabled: number;
    redirect_uris: string | null;
    public_client: number;
    purposes: string | null;
  }>(
    'SELECT id, name, secret_hash, scope, jwks, disabled, redirect_uris, public_client, purposes FROM oauth_client WHERE id = ?',
    [id],
  );
  const row = rows[0];
  if (!row) {
    return undefined;
  }
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    scope: row.scope,
    jwks: row.jwks ? JSON.parse(row.jwks) : null,
    disabled: !!Number(row.disabled),
    redirectUris: row.redirect_uris ? JSON.parse(row.redirect_uris) : [],
    publicClient: !!Number(row.public_client),
    purposes: row.purposes === null ? null : row.purposes.split(',').filter(Boolean),
  };
}

/** Disabling takes effect at once: token verification reads this flag on every request. */
export async function setClientDisabled(db: SqlExecutor, id: string, disabled: boolean): Promise<boolean> {
  return (await db.run('UPDATE oauth_client SET disabled = ? WHERE id = ?', [disabled ? 1 : 0, id])) > 0;
}

/** Sets the purposes of use a client may declare (null: any). */
export async function setClientPurposes(db: SqlExecutor, id: string, purposes: string[] | null): Promise<boolean> {
  const rows = await db.query<{ id: string }>('SELECT id FROM oauth_client WHERE id = ?', [id]);
  if (!rows.length) return false;
  await db.run('UPDATE oauth_client SET purposes = ? WHERE id = ?', [purposes ? purposes.join(',') : null, id]);
  return true;
}
