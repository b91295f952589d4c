import type { Bundle } from '@medplum/fhirtypes';
import { processBundle } from '../server/bundle-processor.js';
import { dispatch } from '../server/fhir-router.js';
import type { Repository } from '../store/repository.js';
import { systemRequest } from './system-request.js';

/** Resources per database transaction in bulk loads. */
export const DEFAULT_GROUP_RESOURCES = 5000;

export type BundleOutcome = { response: Bundle } | { error: Error };

/**
 * Bulk loads write many Bundles per database transaction: one small transaction per Bundle rewrites the
 * same hot index pages on every commit, and on SQLite those WAL writes were 38 % of ingest time (profiled).
 * Each Bundle still runs in its own SAVEPOINT, so a bad one is undone alone; outcomes are reported only
 * after the group has committed, never before the data is stored.
 */
export class BundleGroupWriter {
  private pending: PendingBundle[] = [];
  private resources = 0;

  constructor(
    private readonly repo: Repository,
    private readonly maxResources = DEFAULT_GROUP_RESOURCES,
  ) {}

  async add(bundle: Bundle, done: (outcome: BundleOutcome) => void): Promise<void> {
    this.pending.push({ bundle, done });
    this.resources += bundle.entry?.length ?? 1;
    if (this.resources >= this.maxResources) {
      await this.flush();
    }
  }

  async flush(): Promise<void> {
    const group = this.pending;
    this.pending = [];
    this.resources = 0;
    if (!group.length) {
      return;
    }
    let outcomes: BundleOutcome[];
    try {
      outcomes = (await this.writeGroup(group, true)) ?? (await this.writeGroup(group, false)) ?? [];
    } catch (err) {
      outcomes = group.map(() => ({ error: err as Error }));
    }
    group.forEach((item, i) => item.done(outcomes[i]));
  }

  /**
   * Writes the group in one transaction. Optimistically first, without a savepoint per Bundle: when any
   * Bundle (or batch entry) fails, the whole transaction is rolled back and undefined returned, and the
   * group is written again with a savepoint per Bundle so that only the bad one is undone.
   */
  private async writeGroup(group: PendingBundle[], optimistic: boolean): Promise<BundleOutcome[] | undefined> {
    try {
      return await this.repo.transaction(async (tx) => {
        const repo = optimistic ? tx.optimistic() : tx;
        const out: BundleOutcome[] = [];
        for (const { bundle } of group) {
          try {
            // A transaction Bundle nests as a savepoint; wrapping every Bundle in one isolates batches too.
            out.push({ response: await repo.transaction((sp) => processBundle(sp, systemRequest(bundle), dispatch)) });
          } catch (err) {
            if (optimistic) {
              throw new OptimisticGroupFailed();
            }
            out.push({ error: err as Error });
          }
        }
        if (repo.failedOptimistically) {
          throw new OptimisticGroupFailed();
        }
        return out;
      });
    } catch (err) {
      if (err instanceof OptimisticGroupFailed) {
        return undefined;
      }
      throw err;
    }
  }
}

/** Rolls back an optimistic group write so that it is redone with savepoints. */
class OptimisticGroupFailed extends Error {}

interface PendingBundle {
  bundle: Bundle;
  done: (outcome: BundleOutcome) => void;
}
