import type { Patient, Resource } from '@medplum/fhirtypes';
import { newResourceId } from '../store/resource-id.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { blockingKeys, firstNameDateKey } from './blocking.js';
import { matchEnterprises } from './enterprise-matcher.js';
import { Enterprises } from './enterprises.js';
import { personFeatures, unusableIdentifiers } from './features.js';
import { compareFeatures, type ComparisonVector } from './comparison.js';
import { MatchModel, type MatchDecision } from './match-model.js';
import { applyPartition, type PendingSource } from './identity-partition.js';
import { MpiStore, type SourceRecord } from './mpi-store.js';
import { fullNameKey, NameFrequencies } from './name-frequency.js';
import { PairJudge } from './pair-judge.js';
import { clusterRecords, type BlockedLink, type ClusterMember, type LinkEdge } from './reclustering.js';
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

  constructor(private inForce = new MatchModel()) {}

  /** The model links are decided by: the newest stored when the store opened, then what `adopt` puts in force. */
  get model(): MatchModel {
    return this.inForce;
  }

  /** Puts a newly learned model in force for the next record (model-upkeep.ts). */
  adopt(model: MatchModel): void {
    this.inForce = model;
  }

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
    for (const warning of unusableIdentifiers(patient)) repo.warn(warning, `Patient/${patient.id}`);
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
      // An update (an HL7 ADT replaces the sender's record by its MRN) that turns the record into someone
      // else: the source owns its record, so it is written, but never without a word.
      const reasons = sourceConflicts(compareFeatures(existing.features, features));
      if (reasons.length) {
        await enterprises.record({ action: 'source-conflict', enterpriseId: existing.enterpriseId, patientId: record.patientId, detail: { reasons, update: true } });
        repo.warn(`Patient/${record.patientId} was updated by its source with demographics contradicting its previous version (${reasons.join(', ')}): if the source identifier (MRN) was reused for another person, a data steward should separate them`, `Patient/${record.patientId}`);
      }
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
    const linkable = matches.filter((m) => m.linkable);
    let enterpriseOf: Map<string, string>;
    let blocked: BlockedLink[] = [];
    if (linkable.length) {
      // It would link: it and the identities it meets are clustered again, so that two identities it
      // joins become one (unless a record of one contradicts a record of the other) and the result does
      // not depend on the order the records came in.
      ({ enterpriseOf, blocked } = await this.recluster(enterprises, { record, keys, replacing: Boolean(existing) }, linkable.map((m) => m.enterpriseId), now));
    } else {
      if (!existing) {
        record.enterpriseId = newResourceId();
        await store.createEnterprise(record.enterpriseId, now);
        await enterprises.record({ action: 'enterprise-created', enterpriseId: record.enterpriseId, patientId: record.patientId });
      }
      await store.saveSource(record, keys, Boolean(existing));
      enterpriseOf = new Map([[record.patientId, record.enterpriseId]]);
    }
    // Possible matches for a steward: links the clustering refused (a record on the other side contradicts
    // one on this side), then the review outcomes. The best few only: the queue holds the uncertain pairs,
    // not every namesake (storage stays linear).
    const finalOf = (patientId: string, fallback: string) => enterpriseOf.get(patientId) ?? fallback;
    const questions = [
      ...blocked.map((b) => ({ a: b.a, b: b.b, enterpriseId: finalOf(b.b, ''), score: b.score, detail: { vetoes: [`another record of this identity contradicts it: ${b.reasons.join(', ')}`] } })),
      ...matches
        .filter((m) => m.best.outcome !== 'no-match' && finalOf(m.best.patientId, m.enterpriseId) !== record.enterpriseId)
        .map((m) => ({ a: record.patientId, b: m.best.patientId, enterpriseId: finalOf(m.best.patientId, m.enterpriseId), score: m.best.score, detail: detailOf(m.best) })),
    ];
    const asked = new Set<string>();
    for (const q of questions) {
      const key = [q.a, q.b].sort().join('|');
      if (asked.has(key) || finalOf(q.a, '') === finalOf(q.b, '?')) continue;
      if (asked.size >= MAX_REVIEW_PAIRS) break;
      asked.add(key);
      if (await store.openPair(q.a, q.b, q.score, q.detail, now)) {
        await enterprises.record({ action: 'review-opened', enterpriseId: q.enterpriseId, patientId: q.a, detail: { with: q.b, score: q.score } });
      }
    }
    if (reused) {
      const reasons = sourceConflicts(compareFeatures(reused.features, features));
      const detail = { vetoes: [`the source sent this record under the MRN of another record it sent, and they contradict: ${reasons.join(', ')}`] };
      await store.openPair(record.patientId, reused.patientId, 0, detail, now);
      await enterprises.record({ action: 'source-conflict', enterpriseId: record.enterpriseId, patientId: record.patientId, detail: { with: reused.patientId, reasons } });
      repo.warn(`This record's source identifier (MRN) already names Patient/${reused.patientId}, whose ${reasons.join(', ')}: kept as a separate record and sent to a data steward for review`, `Patient/${record.patientId}`);
    }
    if (!linkable.length) await enterprises.refreshGolden(record.enterpriseId);
  }

  /**
   * Re-clusters a record with every record of the identities it would link to (at most MAX_RECLUSTER
   * records taken apart; beyond that each identity stays whole and only joins are weighed), and writes
   * the result. The record's own event says whom it joined, or that it founded an identity.
   */
  private async recluster(enterprises: Enterprises, pending: PendingSource, meets: string[], now: number): Promise<{ enterpriseOf: Map<string, string>; blocked: BlockedLink[] }> {
    const store = enterprises.store;
    const own = pending.record.enterpriseId;
    await enterprises.lockAll([...meets, own].filter(Boolean));
    // Merges committed since the candidates were read: the identities they went into.
    const current = new Set<string>();
    for (const id of meets) current.add((await enterprises.lockCurrent(id)).enterpriseId);
    current.delete(own);
    const self: ClusterMember = { patientId: pending.record.patientId, features: pending.record.features };
    const members: ClusterMember[] = [self];
    const currentOf = new Map<string, string>([[self.patientId, own]]);
    const groups: SourceRecord[][] = [];
    for (const id of [...current].sort()) groups.push(await store.sourcesOf(id));
    const whole = groups.flat().length + 1 > MAX_RECLUSTER;
    for (const sources of groups) {
      // A steward's decision is not undone by the matcher: an identity a steward shaped stays whole.
      const fixed = whole || sources.some((s) => s.linkedBy === 'steward');
      for (const s of sources) {
        members.push({ patientId: s.patientId, features: s.features, unit: fixed ? s.enterpriseId : undefined });
        currentOf.set(s.patientId, s.enterpriseId);
      }
    }
    const nameKeys = members.map((m) => fullNameKey(m.features));
    const shared = nameKeys.filter((k, i) => k && nameKeys.indexOf(k) !== i);
    const dateKeys = members.filter((m) => shared.includes(fullNameKey(m.features))).map((m) => firstNameDateKey(m.features) ?? '');
    const judge = new PairJudge(this.model, shared.length ? await this.names.bearers(store.sql, shared, dateKeys) : undefined, currentOf, await store.rejectedAmong(members.map((m) => m.patientId)));
    const edges: LinkEdge[] = [];
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        if (i > 0 && members[i].unit && members[i].unit === members[j].unit) continue;
        if (whole && i > 0) break;
        const edge = judge.edge(members[i], members[j]);
        if (edge) edges.push(edge);
      }
    }
    const { clusters, blocked } = clusterRecords(members, edges, judge.conflicts);
    const applied = await applyPartition(enterprises, clusters, currentOf, pending, now);
    const joined = applied.enterpriseOf.get(self.patientId) as string;
    const partners = members.filter((m) => m !== self && applied.enterpriseOf.get(m.patientId) === joined).map((m) => ({ m, d: judge.decide(self, m) }));
    const best = partners.sort((x, y) => y.d.score - x.d.score)[0];
    if (best && !applied.created.has(joined)) {
      pending.record.linkedBy = 'auto';
      pending.record.score = best.d.score;
      await store.sql.run("UPDATE mpi_source SET linked_by = 'auto', score = ? WHERE patient_id = ?", [best.d.score, self.patientId]);
      await enterprises.record({ action: 'auto-linked', enterpriseId: joined, patientId: self.patientId, detail: { with: best.m.patientId, score: best.d.score, contributions: best.d.contributions } });
    }
    return { enterpriseOf: applied.enterpriseOf, blocked };
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

/** Most records taken apart and clustered again around one record (a pair's comparison each). */
const MAX_RECLUSTER = 60;

function detailOf(decision: MatchDecision): unknown {
  return { contributions: decision.contributions, vetoes: decision.vetoes };
}
