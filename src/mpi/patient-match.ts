import type { Patient } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';
import { blockingKeys } from './blocking.js';
import { matchEnterprises } from './enterprise-matcher.js';
import { personFeatures } from './features.js';
import type { MatchDecision } from './match-model.js';
import { MpiStore } from './mpi-store.js';
import type { PatientLinker } from './patient-linker.js';
import { sourceIdentifier } from './source-identity.js';

/** The match-grade codes of FHIR R4 Patient/$match (http://hl7.org/fhir/match-grade). */
export type MatchGrade = 'certain' | 'probable' | 'possible';

export interface PersonMatch {
  /** The enterprise (golden) record: the person as the exchange knows them. */
  golden: Patient;
  /** 0..1: the Fellegi-Sunter score over the auto-link threshold, capped at 1. */
  score: number;
  grade: MatchGrade;
  decision?: MatchDecision & { patientId: string };
}

/** Certain before probable before possible, whatever the scores (a known MRN is certain at score 1). */
const GRADE_ORDER: Record<MatchGrade, number> = { certain: 0, probable: 1, possible: 2 };

/**
 * Who in the exchange a set of demographics is (Patient/$match): the enterprise records whose best
 * source record scores at least the review threshold, best first. A record already known by its source
 * identifier is that person with certainty. Certain means what linking means: the score reaches the
 * auto-link threshold and no veto applies; probable is the upper half of the review band.
 */
export async function matchPerson(repo: Repository, linker: Pick<PatientLinker, 'model' | 'names'>, patient: Patient): Promise<PersonMatch[]> {
  const { model, names } = linker;
  const store = new MpiStore(repo.sql);
  const out = new Map<string, Omit<PersonMatch, 'golden'>>();
  const identifier = sourceIdentifier(patient);
  const known = identifier && (await store.sourceByIdentifier(identifier.system, identifier.value));
  if (known) {
    const source = await store.source(known);
    if (source) {
      out.set(source.enterpriseId, { score: 1, grade: 'certain' });
    }
  }
  const features = personFeatures(patient);
  const { autoLink, review } = model.thresholds;
  for (const match of await matchEnterprises(store, model, names, features, blockingKeys(features))) {
    if (match.best.outcome === 'no-match' || out.has(match.enterpriseId)) {
      continue;
    }
    const grade: MatchGrade = match.best.outcome === 'auto-link' ? 'certain' : match.best.score >= (review + autoLink) / 2 ? 'probable' : 'possible';
    out.set(match.enterpriseId, { score: Math.min(1, Math.max(0, match.best.score / autoLink)), grade, decision: match.best });
  }
  const goldens = (await repo.readMany('Patient', [...out.keys()])) as Patient[];
  return goldens
    .filter((g) => g.active !== false)
    .map((golden) => ({ golden, ...(out.get(golden.id as string) as Omit<PersonMatch, 'golden'>) }))
    .sort((a, b) => GRADE_ORDER[a.grade] - GRADE_ORDER[b.grade] || b.score - a.score);
}
