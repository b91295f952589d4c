import type { SqlExecutor } from '../store/database.js';
import { newOpaqueToken, tokenHash } from './opaque-tokens.js';
import { revokeId } from './token-status.js';
import type { UserGrant } from './user-grant.js';

/** `offline_access`: usable for 30 days; `online_access`: for a working day (SMART leaves both to the server). */
export const OFFLINE_LIFETIME_MS = 30 * 24 * 3600_000;
const ONLINE_LIFETIME_MS = 12 * 3600_000;

export function wantsRefreshToken(scope: string): 'offline' | 'online' | undefined {
  const scopes = scope.split(' ');
  return scopes.includes('offline_access') ? 'offline' : scopes.includes('online_access') ? 'online' : undefined;
}

interface RefreshRow {
  family: string;
  client_id: string;
  user_id: string;
  grant_json: string;
  expires_at: number | string;
  used_at: number | string | null;
}

/** Issues a refresh token for the grant; a rotated token keeps its family's expiry (rotation does not extend it). */
export async function issueRefreshToken(db: SqlExecutor, grant: UserGrant, kind: 'offline' | 'online', expiresAt?: number): Promise<string> {
  const token = newOpaqueToken();
  const now = Date.now();
  await db.run('DELETE FROM oauth_refresh_token WHERE expires_at < ?', [now]);
  await db.run('INSERT INTO oauth_refresh_token (token_hash, family, client_id, user_id, grant_json, expires_at) VALUES (?, ?, ?, ?, ?, ?)', [
    tokenHash(token),
    grant.grantId,
    grant.clientId,
    grant.userId,
    JSON.stringify(grant),
    expiresAt ?? now + (kind === 'offline' ? OFFLINE_LIFETIME_MS : ONLINE_LIFETIME_MS),
  ]);
  return token;
}

export type RefreshOutcome = { grant: UserGrant; expiresAt: number } | { refused: 'unknown' | 'expired' | 'other-client' | 'reused' };

/**
 * Rotation: a refresh token is good for one use and marks itself used (the UPDATE that finds it unused
 * wins a race). Presenting a used one again means it was copied: the whole grant is revoked, as the OAuth
 * security BCP advises, which also stops the access tokens issued under it.
 */
export async function useRefreshToken(db: SqlExecutor, token: string, clientId: string): Promise<RefreshOutcome> {
  const hash = tokenHash(token);
  const rows = await db.query<RefreshRow>('SELECT family, client_id, user_id, grant_json, expires_at, used_at FROM oauth_refresh_token WHERE token_hash = ?', [hash]);
  const row = rows[0];
  if (!row) return { refused: 'unknown' };
  if (row.client_id !== clientId) return { refused: 'other-client' };
  if (Number(row.expires_at) < Date.now()) return { refused: 'expired' };
  if (row.used_at !== null || (await db.run('UPDATE oauth_refresh_token SET used_at = ? WHERE token_hash = ? AND used_at IS NULL', [Date.now(), hash])) !== 1) {
    await revokeGrant(db, row.family);
    return { refused: 'reused' };
  }
  return { grant: JSON.parse(row.grant_json), expiresAt: Number(row.expires_at) };
}

/** An active refresh token's grant (introspection), without using it. */
export async function lookupRefreshToken(db: SqlExecutor, token: string): Promise<{ grant: UserGrant; expiresAt: number } | undefined> {
  const rows = await db.query<RefreshRow>('SELECT family, client_id, user_id, grant_json, expires_at, used_at FROM oauth_refresh_token WHERE token_hash = ?', [tokenHash(token)]);
  const row = rows[0];
  if (!row || row.used_at !== null || Number(row.expires_at) < Date.now()) return undefined;
  return { grant: JSON.parse(row.grant_json), expiresAt: Number(row.expires_at) };
}

/** Revokes a refresh token presented by its client (RFC 7009): its whole grant stops, access tokens included. */
export async function revokeRefreshToken(db: SqlExecutor, token: string, clientId: string): Promise<boolean> {
  const rows = await db.query<{ family: string; client_id: string }>('SELECT family, client_id FROM oauth_refresh_token WHERE token_hash = ?', [tokenHash(token)]);
  if (!rows[0] || rows[0].client_id !== clientId) return false;
  await revokeGrant(db, rows[0].family);
  return true;
}

async function revokeGrant(db: SqlExecutor, grantId: string): Promise<void> {
  await db.run('DELETE FROM oauth_refresh_token WHERE family = ?', [grantId]);
  await revokeId(db, grantId, Date.now() + OFFLINE_LIFETIME_MS);
}
