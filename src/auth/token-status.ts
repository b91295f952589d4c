import type { AuthContext } from '../security/token-service.js';
import type { SqlExecutor, SqlValue } from '../store/database.js';

/**
 * Revoked token ids (`jti`) and grant ids, kept until the tokens they name have expired. Access tokens are
 * self-contained JWTs; this list is what makes revoking one take effect before it expires.
 */
export async function revokeId(db: SqlExecutor, id: string, expiresAt: number): Promise<void> {
  await db.run('DELETE FROM oauth_revoked WHERE expires_at < ?', [Date.now()]);
  await db.run('INSERT INTO oauth_revoked (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING', [id, expiresAt]);
}

export interface TokenSubject {
  clientId: string;
  userId?: string;
  tokenId?: string;
  grantId?: string;
}

/**
 * Facts about the caller that the request will need next, asked as more columns of the token check's
 * statement (on PostgreSQL every statement is a round trip, and both are asked on every request).
 */
export interface CallerLookup {
  /** Select-list items (scalar subqueries) and their parameters. */
  columns(context: AuthContext): { sql: string; params: SqlValue[] };
  /** Keeps what they returned for the request whose own context this is. */
  keep(context: AuthContext, row: Record<string, unknown>): void;
}

/**
 * Why a validly signed token must not be honoured now, or undefined if it may. One round trip of primary-key
 * lookups per request, deliberately not cached: a user or client disabled by `tessera users disable` (a
 * different process, maybe another server on the same PostgreSQL) or a token revoked a moment ago is then
 * refused on the very next request. The signature check stays cached per token (TokenService.verify).
 * `alongside`: more columns asked in the same statement (the caller's context), kept only if the token may be honoured.
 */
export async function tokenInactiveReason(
  db: SqlExecutor,
  subject: TokenSubject,
  alongside?: { lookup: CallerLookup; context: AuthContext },
): Promise<string | undefined> {
  const extra = alongside?.lookup.columns(alongside.context);
  const [row] = await db.query<{ client_disabled: number | null; user_disabled: number | null; revoked: number | string } & Record<string, unknown>>(
    `SELECT (SELECT disabled FROM oauth_client WHERE id = ?) AS client_disabled,
            (SELECT disabled FROM app_user WHERE id = ?) AS user_disabled,
            (SELECT COUNT(*) FROM oauth_revoked WHERE id IN (?, ?)) AS revoked${extra ? `, ${extra.sql}` : ''}`,
    [subject.clientId, subject.userId ?? '', subject.tokenId ?? '', subject.grantId ?? '', ...(extra?.params ?? [])],
  );
  if (row.client_disabled === null || Number(row.client_disabled)) return 'client disabled or unknown';
  if (subject.userId !== undefined && (row.user_disabled === null || Number(row.user_disabled))) return 'user disabled or unknown';
  if (Number(row.revoked)) return 'token revoked';
  alongside?.lookup.keep(alongside.context, row);
  return undefined;
}
