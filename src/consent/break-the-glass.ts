import { randomUUID } from 'node:crypto';
import { badRequest, forbidden } from '../fhir/outcome.js';
import type { AuthContext } from '../security/token-service.js';
import { personRecords } from '../engine/request-policy.js';
import type { SqlExecutor } from '../store/database.js';
import type { Repository } from '../store/repository.js';

/** How long a break-the-glass grant lasts at most (a clinician may ask for less, and end it early). */
export const BTG_MINUTES = 60;
/** Who may break the glass: people caring for patients, never a machine client or a patient. */
const MAY_BREAK_THE_GLASS = new Set(['clinician']);

export interface BreakTheGlassGrant {
  id: string;
  holder: string;
  patientId: string;
  reason: string;
  grantedAt: number;
  expiresAt: number;
  reviewedAt?: number;
  reviewedBy?: string;
}

/**
 * Declares break-the-glass: the user, in an emergency, reads one person's data past their consents and
 * the data's labels, for BTG_MINUTES. The grant names the record declared on, the person's records as
 * they were then (the person is followed as the index changes, see activeBreakTheGlass) and the reason;
 * every use is audited, and privacy officers review each grant (reviewList).
 */
export async function breakTheGlass(sql: SqlExecutor, auth: AuthContext, patientId: string, patientRecords: string[], reason: string, minutes = BTG_MINUTES): Promise<BreakTheGlassGrant> {
  if (!auth.user || !MAY_BREAK_THE_GLASS.has(auth.user.role)) {
    throw forbidden('Only a signed-in clinician may break the glass');
  }
  if (!reason.trim() || reason.length > 1000) {
    throw badRequest('Break-the-glass needs a reason (up to 1,000 characters)');
  }
  const now = Date.now();
  const grant: BreakTheGlassGrant = { id: randomUUID(), holder: `user:${auth.user.id}`, patientId, reason: reason.trim(), grantedAt: now, expiresAt: now + Math.min(minutes, BTG_MINUTES) * 60_000 };
  await sql.run('INSERT INTO btg_grant (id, holder, patient_id, patient_records, reason, granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
    grant.id,
    grant.holder,
    patientId,
    patientRecords.join(','),
    grant.reason,
    grant.grantedAt,
    grant.expiresAt,
  ]);
  return grant;
}

/**
 * The patient records a holder has a running break-the-glass grant for: the records of the person of the
 * record it was declared on, as the master patient index has them now, not as stored at declaration
 * (`patient_records` keeps those, as a record of what the grant reached then).
 *
 * A grant follows the person, both ways, because it is for one person: the clinician declared an
 * emergency about the patient in front of them, and for the hour it lasts a record of that patient linked
 * meanwhile (a referral's record arriving from another hospital) is part of what the emergency needs;
 * a record unlinked or unmerged meanwhile is, in the steward's judgement, somebody else's, for whom no
 * emergency was declared, and must not stay exempt from their consent. Derived at request time rather
 * than rewritten on each identity change (as consent rows are): a holder has at most a few running grants,
 * read only on that holder's requests, and callers without one pay nothing more than before.
 */
export async function activeBreakTheGlass(repo: Repository, holder: string): Promise<string[]> {
  const rows = await repo.sql.query<{ patient_id: string }>('SELECT DISTINCT patient_id FROM btg_grant WHERE holder = ? AND expires_at > ?', [holder, Date.now()]);
  const records = new Set<string>();
  for (const row of rows) {
    (await personRecords(repo, row.patient_id)).forEach((id) => records.add(id));
  }
  return [...records];
}

/**
 * Ends the holder's running grants on any of the person's records now (the emergency is over): their
 * `expires_at` becomes the time they ended, which the review list shows. Returns how many were running.
 */
export async function endBreakTheGlass(sql: SqlExecutor, holder: string, personRecords: readonly string[]): Promise<number> {
  if (!personRecords.length) return 0;
  const now = Date.now();
  return sql.run(`UPDATE btg_grant SET expires_at = ? WHERE holder = ? AND expires_at > ? AND patient_id IN (${personRecords.map(() => '?').join(', ')})`, [now, holder, now, ...personRecords]);
}

/** Grants for privacy officers to review: unreviewed first, newest first. */
export async function reviewList(sql: SqlExecutor, options: { unreviewedOnly: boolean; limit: number }): Promise<BreakTheGlassGrant[]> {
  const rows = await sql.query<{ id: string; holder: string; patient_id: string; reason: string; granted_at: number; expires_at: number; reviewed_at: number | null; reviewed_by: string | null }>(
    `SELECT id, holder, patient_id, reason, granted_at, expires_at, reviewed_at, reviewed_by FROM btg_grant
     ${options.unreviewedOnly ? 'WHERE reviewed_at IS NULL' : ''} ORDER BY CASE WHEN reviewed_at IS NULL THEN 0 ELSE 1 END, granted_at DESC LIMIT ?`,
    [options.limit],
  );
  return rows.map((r) => ({
    id: r.id,
    holder: r.holder,
    patientId: r.patient_id,
    reason: r.reason,
    grantedAt: Number(r.granted_at),
    expiresAt: Number(r.expires_at),
    reviewedAt: r.reviewed_at === null ? undefined : Number(r.reviewed_at),
    reviewedBy: r.reviewed_by ?? undefined,
  }));
}

/** Marks a grant reviewed by a privacy officer. */
export async function markReviewed(sql: SqlExecutor, id: string, reviewer: string): Promise<boolean> {
  return (await sql.run('UPDATE btg_grant SET reviewed_at = ?, reviewed_by = ? WHERE id = ? AND reviewed_at IS NULL', [Date.now(), reviewer, id])) > 0;
}
