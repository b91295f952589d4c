import type { Patient } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';
import { reclusterAll } from './global-reclustering.js';
import type { PatientLinker } from './patient-linker.js';
import { isGolden } from './source-identity.js';

export interface RebuildSummary {
  records: number;
  seconds: number;
  /** Records the re-clustering step put into another identity. */
  reclustered: number;
}

/** Source records re-linked per write transaction: small enough not to hold writers up for long. */
const CHUNK = 500;

/**
 * Batch mode of the index (`tessera mpi rebuild`): every source Patient in the store goes through the
 * linker again, in id order, a chunk per transaction. Records the index does not hold yet (written while
 * it was off, or migrated from before it) are linked; every record's features and blocking keys are
 * recomputed (after a change of normalisation); records alone in their enterprise are matched again
 * under the current model (after `tessera mpi train`). Then the whole index is clustered again
 * (global-reclustering.ts), so that the partition does not depend on the order records were loaded in;
 * identities a steward shaped stay whole, rulings hold, and an identity keeps its id when it keeps most
 * of its records.
 */
export async function rebuildIndex(repo: Repository, linker: PatientLinker, onProgress?: (done: number, total: number) => void): Promise<RebuildSummary> {
  const started = performance.now();
  const [{ n }] = await repo.sql.query<{ n: number }>("SELECT COUNT(*) AS n FROM resource WHERE type = 'Patient' AND deleted = 0");
  const total = Number(n);
  let done = 0;
  let records = 0;
  let after = '';
  for (;;) {
    const rows = await repo.sql.query<{ id: string; content: string }>(
      "SELECT id, content FROM resource WHERE type = 'Patient' AND deleted = 0 AND id > ? ORDER BY id LIMIT ?",
      [after, CHUNK],
    );
    if (!rows.length) {
      break;
    }
    after = rows[rows.length - 1].id;
    const sources = rows.map((r) => JSON.parse(r.content) as Patient).filter((p) => !isGolden(p));
    await repo.transaction((tx) => linker.written(tx, sources));
    records += sources.length;
    done += rows.length;
    onProgress?.(done, total);
  }
  // Then every record clustered again from all its candidate pairs: the same partition whatever order
  // the records were loaded in.
  const { moved } = await reclusterAll(repo, linker.model, linker.names);
  return { records, seconds: (performance.now() - started) / 1000, reclustered: moved };
}
