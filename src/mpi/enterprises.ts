import { isDeepStrictEqual } from 'node:util';
import type { Patient } from '@medplum/fhirtypes';
import { notFound } from '../fhir/outcome.js';
import type { Repository } from '../store/repository.js';
import { goldenPatient, replacedGoldenPatient } from './golden-record.js';
import { MpiStore, type EnterpriseRecord, type LinkedBy, type MpiEventRecord } from './mpi-store.js';

/**
 * The lock a transaction holds while it changes an enterprise identity (its records, its golden record).
 * Whatever is worked out from a person's set of records and must not miss a concurrent change of it
 * (a Consent's rows, src/consent/consent-store.ts) takes the locks of the person's enterprises too.
 */
export function enterpriseLock(enterpriseId: string): string {
  return `mpi-enterprise:${enterpriseId}`;
}

/**
 * Changes to enterprise identities, shared by incremental linking and the data steward: every one locks
 * the enterprises it touches, rewrites their golden records and appends its event, all in the caller's
 * write transaction. `actor` is who the events name: 'mpi' for the matcher, the client id for a steward.
 */
export class Enterprises {
  readonly store: MpiStore;
  readonly repo: Repository;

  constructor(
    repo: Repository,
    readonly actor: string,
  ) {
    // Golden-record writes are part of the caller's change: no savepoint of their own.
    this.repo = repo.joined();
    this.store = new MpiStore(repo.sql);
  }

  /**
   * Locks an enterprise for this transaction and returns it as it now is, following merges to the
   * enterprise that absorbed it: a merge committed between a caller's read and this lock is seen here,
   * so no source record is ever put into an enterprise that no longer exists.
   */
  async lockCurrent(enterpriseId: string): Promise<EnterpriseRecord> {
    let id = enterpriseId;
    for (;;) {
      await this.repo.sql.lock(enterpriseLock(id));
      const enterprise = await this.store.enterprise(id);
      if (!enterprise) {
        throw notFound(`No enterprise identity ${id}`);
      }
      if (enterprise.status !== 'merged' || !enterprise.mergedInto) {
        return enterprise;
      }
      id = enterprise.mergedInto;
    }
  }

  /** Locks several enterprises in a fixed order, so that two transactions never wait on each other. */
  async lockAll(enterpriseIds: string[]): Promise<void> {
    await this.repo.sql.lock(...[...new Set(enterpriseIds)].sort().map(enterpriseLock));
  }

  /** Moves source records into `into`; an enterprise left without sources is merged into `into`. */
  async move(patientIds: string[], from: string, into: string, linkedBy: LinkedBy, reason: string | undefined, now = Date.now()): Promise<void> {
    await this.store.moveSources(patientIds, into, linkedBy, now);
    if (!(await this.store.sourcesOf(from)).length) {
      await this.retireInto(from, into, patientIds, reason, now);
    } else {
      await this.refreshGolden(from);
    }
    await this.refreshGolden(into);
  }

  /**
   * Marks an enterprise whose sources all went to `into` as merged: its golden record stays, inactive,
   * with a `replaced-by` link, so that anyone holding the old enterprise id is sent on. The event lists
   * the records moved, which is what an unmerge puts back.
   */
  async retireInto(enterpriseId: string, into: string, moved: string[], reason: string | undefined, now = Date.now()): Promise<void> {
    await this.store.setEnterpriseStatus(enterpriseId, 'merged', into, now);
    await this.repo.update(replacedGoldenPatient(enterpriseId, into));
    await this.record({ action: 'enterprise-merged', enterpriseId, reason, detail: { into, moved } });
  }

  /** Rewrites the golden Patient from the enterprise's current source records (deletes it when none is left). */
  async refreshGolden(enterpriseId: string): Promise<void> {
    const sources = await this.store.sourcesOf(enterpriseId);
    if (!sources.length) {
      await this.store.setEnterpriseStatus(enterpriseId, 'retired', undefined, Date.now());
      if (await this.repo.exists('Patient', enterpriseId)) {
        await this.repo.delete('Patient', enterpriseId);
      }
      return;
    }
    // The sources and the current golden record in one read.
    const read = (await this.repo.readMany('Patient', [enterpriseId, ...sources.map((s) => s.patientId)])) as Patient[];
    const current = read.find((p) => p.id === enterpriseId);
    const next = goldenPatient(enterpriseId, read.filter((p) => p !== current));
    // No new version when nothing changed (a re-sent record, a rebuild): history shows real changes only.
    if (!current || !isDeepStrictEqual(withoutMeta(current), withoutMeta(next))) {
      await this.repo.update(next);
    }
  }

  async record(event: Omit<MpiEventRecord, 'seq' | 'at' | 'actor'>): Promise<void> {
    await this.store.appendEvent({ ...event, at: Date.now(), actor: this.actor });
  }
}

function withoutMeta(patient: Patient): Patient {
  const { meta: _meta, ...rest } = patient;
  return { ...rest, meta: { tag: _meta?.tag } } as Patient;
}
