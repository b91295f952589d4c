import type { Patient, Resource } from '@medplum/fhirtypes';
import { newResourceId } from '../store/resource-id.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { blockingKeys } from './blocking.js';
import { matchEnterprises } from './enterprise-matcher.js';
import { Enterprises } from './enterprises.js';
import { personFeatures, unusableIdentifiers } from './features.js';
import { compareFeatures, type ComparisonVector } from './comparison.js';
import { MatchModel, type MatchDecision } from './match-model.js';
import { MpiStore, type SourceRecord } from './mpi-store.js';
import { NameFrequencies } from './name-frequency.js';
import { isGolden, sourceIdentifier } from './source-identity.js';

/**
 * Incremental linking: every Patient written (REST, Bundles, bulk import) is matched inside the same
 * transaction. A new source record joins the enterprise identity of its best auto-link match or founds
 * its own; possible matches go to the review queue and are not linked. The golden Patient of every
 * enterprise it touches is rewritten. Every change is appended to mpi_event in the same transaction, so
 * the log holds exactly what committed; subscribers (notifications, the record view) read it by `seq`.
 */
export class PatientLinker implements WriteObserver {
  readonly types = new Set(['Patient']);

  /** How common each full name is: shared by linking and Patient/$match. */
  readonly names = new NameFrequencies();

  constructor(readonly model = new MatchModel()) {}

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    for (const patient of resources as Patient[]) {
      if (!isGolden(patient)) {
        await this.linkSource(repo, patient);
      }
    }
  }

  /** A Patient created under a source identifier the index already holds is that source record re-sent. */
  async existingFor(repo: Repository, resource: Resource): Promise<string | undefined> {
    const patient = resource as Patient;
    const identifier = isGolden(patient) ? undefined : sourceIdentifier(patient);
    if (!identifier) {
      return undefined;
    }
    // Two sources' concurrent first sends of one MRN: the second waits, then finds the first.
    await repo.sql.lock(`mpi-source:${identifier.system}|${identifier.value}`);
    const store = new MpiStore(repo.sql);
    const holder = await store.sourceByIdentifier(identifier.system, identifier.value);
    const held = holder ? await store.source(holder) : undefined;
    if (held && sourceConflicts(compareFeatures(held.features, personFeatures(patient))).length) {
      // One MRN for someone else entirely: a new record beside the first, for a steward (linkSource).
      return undefined;
    }
    return holder;
  }

  async deleted(repo: Repository, _type: string, id: string): Promise<void> {
    const enterprises = new Enterprises(repo, 'mpi');
    const source = await enterprises.store.source(id);
    if (!source) {
      return;
    }
    await enterprises.lockCurrent(source.enterpriseId);
    await enterprises.store.removeSource(id);
    await enterprises.record({ action: 'source-removed', enterpriseId: source.enterpriseId, patientId: id });
    await enterprises.refreshGolden(source.enterpriseId);
  }

  private async linkSource(repo: Repository, patient: Patient): Promise<void> {
    const enterprises = new Enterprises(repo, 'mpi');
    const store = enterprises.store;
    const now = Date.now();
    const features = personFeatures(patient);
    for (const warning of unusableIdentifiers(patient)) repo.warn(warning);
    const keys = blockingKeys(features);
    // Writers that could match each other share a blocking key: lock the keys (sorted: no deadlock).
    await repo.sql.lock(...[...keys].sort().map((key) => `mpi:${key}`));
    let identifier = sourceIdentifier(patient);
    const existing = await store.source(patient.id as string);
    const holder = identifier && (await store.sourceByIdentifier(identifier.system, identifier.value));
    const reused = holder && holder !== patient.id ? await store.source(holder) : undefined;
    if (reused) {
      // existingFor found the MRN's record contradicting this one: this record is kept apart, without the
      // MRN as its source identity (the first record keeps it) until a steward decides.
      identifier = undefined;
    }
    const record: SourceRecord = {
      patientId: patient.id as string,
      enterpriseId: existing?.enterpriseId ?? '',
      sourceSystem: identifier?.system,
      sourceValue: identifier?.value,
      features,
      linkedBy: existing?.linkedBy ?? 'origin',
      score: existing?.score,
      updatedAt: now,
    };
    if (existing) {
      await enterprises.lockCurrent(existing.enterpriseId);
    }
    const alone = existing ? (await store.sourcesOf(existing.enterpriseId)).length === 1 : true;
    if (existing && !alone) {
      // A linked record keeps its enterprise on update: moving it is a steward's decision (unlink).
      await store.saveSource(record, keys);
      await enterprises.refreshGolden(record.enterpriseId);
      return;
    }
    // A Patient's first version has never had an id a steward could rule on (a re-created id has version > 1).
    const matches = await matchEnterprises(store, this.model, this.names, features, keys, record.patientId, patient.meta?.versionId !== '1');
    const [target] = matches.filter((m) => m.best.outcome === 'auto-link');
    if (target) {
      // The enterprise may have been merged since the candidates were read: join the one it went into.
      record.enterpriseId = (await enterprises.lockCurrent(target.enterpriseId)).enterpriseId;
      record.linkedBy = 'auto';
      record.score = target.best.score;
    } else if (!existing) {
      record.enterpriseId = newResourceId();
      await store.createEnterprise(record.enterpriseId, now);
      await enterprises.record({ action: 'enterprise-created', enterpriseId: record.enterpriseId, patientId: record.patientId });
    }
    await store.saveSource(record, keys, Boolean(existing));
    if (target) {
      await enterprises.record({
        action: 'auto-linked',
        enterpriseId: record.enterpriseId,
        patientId: record.patientId,
        detail: { with: target.best.patientId, score: target.best.score, contributions: target.best.contributions },
      });
      if (existing && existing.enterpriseId !== record.enterpriseId) {
        // It was alone: its former enterprise is now empty and continues as the one it joined.
        await enterprises.retireInto(existing.enterpriseId, record.enterpriseId, [record.patientId], undefined, now);
      }
    }
    // Possible matches: the review outcome, and other enterprises this record would also auto-link to
    // (a record that bridges two identities is a question for a steward, not a merge).
    // The best few only: the queue holds the uncertain pairs, not every namesake (storage stays linear).
    const possibles = matches.filter((m) => m !== target && m.best.outcome !== 'no-match' && m.enterpriseId !== record.enterpriseId).slice(0, MAX_REVIEW_PAIRS);
    for (const possible of possibles) {
      if (possible.enterpriseId === record.enterpriseId) {
        continue;
      }
      const opened = await store.openPair(record.patientId, possible.best.patientId, possible.best.score, detailOf(possible.best), now);
      if (opened) {
        await enterprises.record({ action: 'review-opened', enterpriseId: possible.enterpriseId, patientId: record.patientId, detail: { with: possible.best.patientId, score: possible.best.score } });
      }
    }
    if (reused) {
      const reasons = sourceConflicts(compareFeatures(reused.features, features));
      const detail = { vetoes: [`the source sent this record under the MRN of another record it sent, and they contradict: ${reasons.join(', ')}`] };
      await store.openPair(record.patientId, reused.patientId, 0, detail, now);
      await enterprises.record({ action: 'source-conflict', enterpriseId: record.enterpriseId, patientId: record.patientId, detail: { with: reused.patientId, reasons } });
      repo.warn(`This record's source identifier (MRN) already names Patient/${reused.patientId}, whose ${reasons.join(', ')}: kept as a separate record and sent to a data steward for review`);
    }
    await enterprises.refreshGolden(record.enterpriseId);
  }
}

/**
 * What makes a record re-sent under a source's MRN someone else than the record that MRN names: two of
 * first name, surname, birth date and sex disagreeing outright (one alone is a correction: a misspelt
 * name fixed, a married name, a birth date entered right at last).
 */
export function sourceConflicts(v: ComparisonVector): string[] {
  const reasons: string[] = [];
  if (v.firstName === 'different') reasons.push('first names differ');
  if (v.surname === 'different') reasons.push('surnames differ');
  if (v.birthDate === 'different') reasons.push('birth dates differ');
  if (v.gender === 'different') reasons.push('sexes differ');
  return reasons.length >= 2 ? reasons : [];
}

/** Most review pairs a record opens: its best-scoring possible matches. */
const MAX_REVIEW_PAIRS = 5;

function detailOf(decision: MatchDecision): unknown {
  return { contributions: decision.contributions, vetoes: decision.vetoes };
}
