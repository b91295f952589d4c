import type { SqlExecutor } from '../store/database.js';
import { newOpaqueToken, tokenHash } from './opaque-tokens.js';
import type { UserGrant } from './user-grant.js';

/** Codes live one minute (RFC 6749 §4.1.2 recommends at most ten) and are redeemed once. */
const CODE_LIFETIME_MS = 60_000;

export interface CodeBinding {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
}

export async function issueAuthorizationCode(db: SqlExecutor, binding: CodeBinding, grant: UserGrant): Promise<string> {
  const code = newOpaqueToken();
  const now = Date.now();
  await db.run('DELETE FROM oauth_code WHERE expires_at < ?', [now]);
  await db.run('INSERT INTO oauth_code (code_hash, client_id, redirect_uri, code_challenge, grant_json, expires_at) VALUES (?, ?, ?, ?, ?, ?)', [
    tokenHash(code),
    binding.clientId,
    binding.redirectUri,
    binding.codeChallenge,
    JSON.stringify(grant),
    now + CODE_LIFETIME_MS,
  ]);
  return code;
}

/**
 * Takes a code out of the store: the DELETE that removes the row is what makes it single-use, even when
 * two token requests race with the same code (only one DELETE counts a row).
 */
export async function redeemAuthorizationCode(db: SqlExecutor, code: string): Promise<(CodeBinding & { grant: UserGrant }) | undefined> {
  const hash = tokenHash(code);
  const rows = await db.query<{ client_id: string; redirect_uri: string; code_challenge: string; grant_json: string; expires_at: number | string }>(
    'SELECT client_id, redirect_uri, code_challenge, grant_json, expires_at FROM oauth_code WHERE code_hash = ?',
    [hash],
  );
  const row = rows[0];
  if (!row || (await db.run('DELETE FROM oauth_code WHERE code_hash = ?', [hash])) !== 1 || Number(row.expires_at) < Date.now()) {
    return undefined;
  }
  return { clientId: row.client_id, redirectUri: row.redirect_uri, codeChallenge: row.code_challenge, grant: JSON.parse(row.grant_json) };
}
