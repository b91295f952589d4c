import type { Patient, Resource } from '@medplum/fhirtypes';
import { newResourceId } from '../store/resource-id.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { blockingKeys } from './blocking.js';
import { compareFeatures } from './comparison.js';
import { personFeatures, type PersonFeatures } from './features.js';
import { goldenPatient, replacedGoldenPatient } from './golden-record.js';
import { MatchModel, type MatchDecision } from './match-model.js';
import { MpiStore, type SourceRecord } from './mpi-store.js';
import { isGolden, sourceIdentifier } from './source-identity.js';

/** Most candidates scored for one record; blocking keys are selective, so this is a safety valve. */
const MAX_CANDIDATES = 500;

interface MpiEvent {
  action: string;
  enterpriseId?: string;
  patientId?: string;
  detail?: unknown;
}

interface EnterpriseMatch {
  enterpriseId: string;
  best: MatchDecision & { patientId: string };
}

/**
 * Incremental linking: every Patient written (REST, Bundles, bulk import) is matched inside the same
 * transaction. A new source record joins the enterprise identity of its best auto-link match or founds
 * its own; possible matches go to the review queue and are not linked. The golden Patient of every
 * enterprise it touches is rewritten. Every change is appended to mpi_event in the same transaction, so
 * the log holds exactly what committed; subscribers (notifications, the record view) read it by `seq`.
 */
export class PatientLinker implements WriteObserver {
  readonly types = new Set(['Patient']);

  constructor(private readonly model = new MatchModel()) {}

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
    return new MpiStore(repo.sql).sourceByIdentifier(identifier.system, identifier.value);
  }

  async deleted(repo: Repository, _type: string, id: string): Promise<void> {
    const store = new MpiStore(repo.sql);
    const source = await store.source(id);
    if (!source) {
      return;
    }
    await store.removeSource(id);
    await this.record(store, { action: 'source-removed', enterpriseId: source.enterpriseId, patientId: id });
    await this.refreshGolden(repo, store, source.enterpriseId);
  }

  private async linkSource(repo: Repository, patient: Patient): Promise<void> {
    const store = new MpiStore(repo.sql);
    const now = Date.now();
    const features = personFeatures(patient);
    const keys = blockingKeys(features);
    // Writers that could match each other share a blocking key: lock the keys (sorted: no deadlock).
    for (const key of [...keys].sort()) {
      await repo.sql.lock(`mpi:${key}`);
    }
    const identifier = sourceIdentifier(patient);
    const existing = await store.source(patient.id as string);
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
    const alone = existing ? (await store.sourcesOf(existing.enterpriseId)).length === 1 : true;
    if (existing && !alone) {
      // A linked record keeps its enterprise on update: moving it is a steward's decision (unlink).
      await store.saveSource(record, keys);
      await this.refreshGolden(repo, store, record.enterpriseId);
      return;
    }
    const matches = await this.match(store, record.patientId, features, keys);
    const [target] = matches.filter((m) => m.best.outcome === 'auto-link');
    if (target) {
      record.enterpriseId = target.enterpriseId;
      record.linkedBy = 'auto';
      record.score = target.best.score;
    } else if (!existing) {
      record.enterpriseId = newResourceId();
      await store.createEnterprise(record.enterpriseId, now);
      await this.record(store, { action: 'enterprise-created', enterpriseId: record.enterpriseId, patientId: record.patientId });
    }
    await store.saveSource(record, keys);
    if (target) {
      await this.record(store, {
        action: 'auto-linked',
        enterpriseId: target.enterpriseId,
        patientId: record.patientId,
        detail: { with: target.best.patientId, score: target.best.score, contributions: target.best.contributions },
      });
      if (existing && existing.enterpriseId !== target.enterpriseId) {
        // It was alone: its former enterprise is now empty and continues as the one it joined.
        await this.retireInto(repo, store, existing.enterpriseId, target.enterpriseId, now);
      }
    }
    for (const possible of matches.filter((m) => m !== target && m.best.score >= this.model.thresholds.review)) {
      if (possible.enterpriseId === record.enterpriseId) {
        continue;
      }
      const opened = await store.openPair(record.patientId, possible.best.patientId, possible.best.score, detailOf(possible.best), now);
      if (opened) {
        await this.record(store, { action: 'review-opened', enterpriseId: possible.enterpriseId, patientId: record.patientId, detail: { with: possible.best.patientId, score: possible.best.score } });
      }
    }
    await this.refreshGolden(repo, store, record.enterpriseId);
  }

  /** Scores the candidates and keeps, per enterprise, its best-scoring member; highest first. */
  private async match(store: MpiStore, patientId: string, features: PersonFeatures, keys: string[]): Promise<EnterpriseMatch[]> {
    const candidates = await store.candidates(keys, patientId, MAX_CANDIDATES);
    const noLink = await store.noLinkPartners(patientId);
    const barred = new Set(candidates.filter((c) => noLink.has(c.patientId)).map((c) => c.enterpriseId));
    const byEnterprise = new Map<string, EnterpriseMatch>();
    for (const candidate of candidates) {
      if (barred.has(candidate.enterpriseId)) {
        continue; // a steward ruled this person apart from someone in that enterprise
      }
      const decision = this.model.decide(compareFeatures(features, candidate.features));
      const current = byEnterprise.get(candidate.enterpriseId);
      if (!current || decision.score > current.best.score) {
        byEnterprise.set(candidate.enterpriseId, { enterpriseId: candidate.enterpriseId, best: { ...decision, patientId: candidate.patientId } });
      }
    }
    return [...byEnterprise.values()].sort((a, b) => b.best.score - a.best.score);
  }

  private async retireInto(repo: Repository, store: MpiStore, enterpriseId: string, into: string, now: number): Promise<void> {
    await store.setEnterpriseStatus(enterpriseId, 'merged', into, now);
    await repo.update(replacedGoldenPatient(enterpriseId, into));
    await this.record(store, { action: 'enterprise-merged', enterpriseId, detail: { into } });
  }

  /** Rewrites the golden Patient from the enterprise's current source records (deletes it when none is left). */
  private async refreshGolden(repo: Repository, store: MpiStore, enterpriseId: string): Promise<void> {
    const sources = await store.sourcesOf(enterpriseId);
    if (!sources.length) {
      await store.setEnterpriseStatus(enterpriseId, 'retired', undefined, Date.now());
      if (await repo.exists('Patient', enterpriseId)) {
        await repo.delete('Patient', enterpriseId);
      }
      return;
    }
    const patients = (await repo.readMany('Patient', sources.map((s) => s.patientId))) as Patient[];
    await repo.update(goldenPatient(enterpriseId, patients));
  }

  private async record(store: MpiStore, event: MpiEvent): Promise<void> {
    await store.appendEvent({ ...event, at: Date.now(), actor: 'mpi' });
  }
}

function detailOf(decision: MatchDecision): unknown {
  return { contributions: decision.contributions, vetoes: decision.vetoes };
}
