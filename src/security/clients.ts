import { randomUUID } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import type { Database } from '../store/database.js';
import { parseScope } from './scopes.js';
import { generateSecret, hashSecret } from './secrets.js';

export interface OAuthClient {
  id: string;
  name: string;
  secretHash: string | null;
  scope: string;
  jwks: JSONWebKeySet | null;
  disabled: boolean;
}

export interface NewClient {
  clientId: string;
  clientSecret?: string;
  name: string;
  scope: string;
}

/** Registers a client. With a JWKS it authenticates by signed assertion (private_key_jwt), else by secret. */
export async function createClient(db: Database, options: { name: string; scope: string; jwks?: JSONWebKeySet }): Promise<NewClient> {
  for (const s of options.scope.split(/\s+/).filter(Boolean)) {
    if (parseScope(s) === undefined) {
      throw new Error(`Invalid scope "${s}" (expected e.g. system/Patient.rs or system/*.cruds)`);
    }
  }
  if (options.jwks && !Array.isArray(options.jwks.keys)) {
    throw new Error('JWKS must be a JSON object with a "keys" array');
  }
  const clientId = randomUUID();
  const clientSecret = options.jwks ? undefined : generateSecret();
  await db.run('INSERT INTO oauth_client (id, name, secret_hash, scope, jwks, created_at, disabled) VALUES (?, ?, ?, ?, ?, ?, 0)', [
    clientId,
    options.name,
    clientSecret ? await hashSecret(clientSecret) : null,
    options.scope,
    options.jwks ? JSON.stringify(options.jwks) : null,
    Date.now(),
  ]);
  return { clientId, clientSecret, name: options.name, scope: options.scope };
}

export async function findClient(db: Database, id: string): Promise<OAuthClient | undefined> {
  const rows = await db.query<{ id: string; name: string; secret_hash: string | null; scope: string; jwks: string | null; disabled: number }>(
    'SELECT id, name, secret_hash, scope, jwks, disabled FROM oauth_client WHERE id = ?',
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
    disabled: !!row.disabled,
  };
}
