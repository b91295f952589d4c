import type { CallerLookup } from '../auth/token-status.js';
import type { Sql } from '../search/filter-sql.js';
import type { AuthContext } from '../security/token-service.js';
import type { SqlExecutor } from '../store/database.js';

/** What the privacy restriction reads about its caller on every request. */
export interface PrivacyFacts {
  /** The caller's clearance (access_clearance.kinds), if any. */
  kinds: string | null;
  /** Whether any consent rule exists at all. */
  consents: boolean;
  /** The Organization id of the participant whose client this is, if any. */
  organization: string | null;
  /** Whether the caller holds a running break-the-glass grant. */
  glass: boolean;
}

/** Whose clearance and grants apply: the signed-in user's, else the client's. */
export function holderOf(auth: AuthContext): string {
  return auth.user ? `user:${auth.user.id}` : `client:${auth.clientId}`;
}

/** The facts as the columns of one SELECT without FROM: asked alone, or beside the token's status. */
function factColumns(auth: AuthContext, now: number): Sql {
  const holder = holderOf(auth);
  return {
    sql: `(SELECT kinds FROM access_clearance WHERE holder = ?) AS kinds,
          (SELECT COUNT(*) FROM (SELECT 1 FROM consent_rule LIMIT 1) c) AS consents,
          (SELECT organization_id FROM participant WHERE active = 1 AND client_id = ? LIMIT 1) AS organization,
          (SELECT COUNT(*) FROM (SELECT 1 FROM btg_grant WHERE holder = ? AND expires_at > ? LIMIT 1) g) AS glass`,
    params: [holder, auth.clientId, holder, now],
  };
}

function factsOf(row: Record<string, unknown>): PrivacyFacts {
  return {
    kinds: (row.kinds as string | null) ?? null,
    consents: Number(row.consents) > 0,
    organization: (row.organization as string | null) ?? null,
    glass: Number(row.glass) > 0,
  };
}

/**
 * Facts read by the token check of the same request, by the request's own AuthContext (TokenService.verify
 * hands each request a context of its own when it asks them). Taken once: a second policy for the same
 * context, or any later use of it, reads them again.
 */
const asked = new WeakMap<AuthContext, PrivacyFacts>();

/**
 * The facts asked in the token check's statement: on PostgreSQL each statement is a round trip, and both
 * are asked on every request. They are as fresh as a lookup of their own: the token check runs when the
 * request arrives (for a request without a body, just before its policy is worked out).
 */
export const privacyFactsLookup: CallerLookup = {
  columns: (auth) => factColumns(auth, Date.now()),
  keep: (auth, row) => void asked.set(auth, factsOf(row)),
};

/** The caller's facts now: those its token check asked, else one statement of their own. */
export async function privacyFacts(sql: SqlExecutor, auth: AuthContext, now: number): Promise<PrivacyFacts> {
  const kept = asked.get(auth);
  if (kept) {
    asked.delete(auth);
    return kept;
  }
  const columns = factColumns(auth, now);
  const [row] = await sql.query<Record<string, unknown>>(`SELECT ${columns.sql}`, columns.params);
  return factsOf(row);
}
