import { compareFeatures } from './comparison.js';
import { firstNameDateKey } from './blocking.js';
import type { PersonFeatures } from './features.js';
import { memberConflicts, type MatchDecision, type MatchModel, type SharedName } from './match-model.js';
import type { MpiStore } from './mpi-store.js';
import { fullNameKey, type NameFrequencies } from './name-frequency.js';

/**
 * Most candidates read per blocking key: a key thousands share (one birth date and first name) costs
 * this many comparisons, not thousands; the record's other keys still find its true matches.
 */
const CANDIDATES_PER_KEY = 64;

export interface EnterpriseMatch {
  enterpriseId: string;
  /** The enterprise's best-scoring source record and its decision. */
  best: MatchDecision & { patientId: string };
  /** The best pair would link on its own (before another member's contradiction is weighed). */
  linkable: boolean;
}

/**
 * Scores a person's features against the source records sharing a blocking key and keeps, per enterprise,
 * its best-scoring member; highest first. With `patientId` (a stored source record being linked), that
 * record is not its own candidate and enterprises a steward ruled apart from it are left out, unless
 * `mayBeRuledOn` is false (a Patient's first version: no steward can have ruled on it yet).
 */
export async function matchEnterprises(
  store: MpiStore,
  model: MatchModel,
  names: NameFrequencies,
  features: PersonFeatures,
  keys: string[],
  patientId?: string,
  mayBeRuledOn = true,
): Promise<EnterpriseMatch[]> {
  const candidates = await store.candidates(keys, patientId ?? '', CANDIDATES_PER_KEY);
  const nameKey = fullNameKey(features);
  const namesakes = new Set(nameKey ? candidates.filter((c) => fullNameKey(c.features) === nameKey).map((c) => c.patientId) : []);
  // Counted once per record, and only when some candidate bears the same full name.
  let sharedName: SharedName | undefined;
  if (namesakes.size) {
    const own = patientId ? (await store.source(patientId))?.enterpriseId : undefined;
    // Date sharers counted up to where they decide (the candidate's person, one of them, besides).
    const counted = await names.count(store.sql, nameKey, own ?? '', firstNameDateKey(features), model.decisiveDateSharers + 1);
    // The candidate's person is one of the people counted: the others are the rest.
    sharedName = counted && { others: Math.max(0, counted.others - 1), records: counted.records, dateSharers: counted.dateSharers === undefined ? undefined : Math.max(0, counted.dateSharers - 1) };
  }
  const noLink = patientId && mayBeRuledOn ? await store.noLinkPartners(patientId) : new Set<string>();
  const barred = new Set(candidates.filter((c) => noLink.has(c.patientId)).map((c) => c.enterpriseId));
  const byEnterprise = new Map<string, EnterpriseMatch>();
  const conflicts = new Map<string, { patientId: string; reasons: string[] }[]>();
  for (const candidate of candidates) {
    if (barred.has(candidate.enterpriseId)) {
      continue; // a steward ruled this person apart from someone in that enterprise
    }
    const vector = compareFeatures(features, candidate.features);
    const decision = model.decide(vector, namesakes.has(candidate.patientId) ? sharedName : undefined);
    const current = byEnterprise.get(candidate.enterpriseId);
    if (!current || decision.score > current.best.score) {
      byEnterprise.set(candidate.enterpriseId, { enterpriseId: candidate.enterpriseId, best: { ...decision, patientId: candidate.patientId }, linkable: decision.outcome === 'auto-link' });
    }
    // A member contradicts unless the pair would link on its own: registration errors in one field of one
    // copy (a mistyped birth date with the id agreeing) are weighed, not taken as another person.
    const against = decision.outcome !== 'auto-link' ? memberConflicts(vector) : [];
    if (against.length) conflicts.set(candidate.enterpriseId, [...(conflicts.get(candidate.enterpriseId) ?? []), { patientId: candidate.patientId, reasons: against }]);
  }
  // An identity whose best member would link but another member contradicts: a steward's question.
  // (The best member's own disagreements are already weighed in its decision.)
  for (const [enterpriseId, members] of conflicts) {
    const match = byEnterprise.get(enterpriseId);
    const reasons = members.filter((m) => m.patientId !== match?.best.patientId).flatMap((m) => m.reasons);
    if (match?.best.outcome === 'auto-link' && reasons.length) {
      match.best = { ...match.best, outcome: 'review', vetoes: [...match.best.vetoes, `another record of this identity contradicts it: ${[...new Set(reasons)].join(', ')}`] };
    }
  }
  return [...byEnterprise.values()].sort((a, b) => b.best.score - a.best.score);
}
