import { newResourceId } from '../store/resource-id.js';
import type { Enterprises } from './enterprises.js';
import type { SourceRecord } from './mpi-store.js';

/** A source record being linked, saved with the enterprise its cluster gets. */
export interface PendingSource {
  record: SourceRecord;
  keys: string[];
  /** Whether a row of it is stored already (an update of a record alone in its enterprise). */
  replacing: boolean;
}

export interface AppliedPartition {
  /** Each record's enterprise afterwards. */
  enterpriseOf: Map<string, string>;
  /** Enterprises this partition founded. */
  created: Set<string>;
}

/**
 * Gives each cluster an enterprise id: the existing enterprise holding most of its records keeps its id
 * (ties: the older id, handed out longest), each id to one cluster at most; a cluster left without one
 * founds a new enterprise. So a join keeps the larger identity's id and a split keeps it for the larger
 * part: ids stay as stable as the partition allows.
 */
export function assignEnterprises(clusters: string[][], currentOf: Map<string, string>): (string | undefined)[] {
  const options: { cluster: number; enterpriseId: string; count: number }[] = [];
  clusters.forEach((members, cluster) => {
    const counts = new Map<string, number>();
    for (const id of members) {
      const current = currentOf.get(id);
      if (current) counts.set(current, (counts.get(current) ?? 0) + 1);
    }
    for (const [enterpriseId, count] of counts) options.push({ cluster, enterpriseId, count });
  });
  options.sort((x, y) => y.count - x.count || (x.enterpriseId < y.enterpriseId ? -1 : x.enterpriseId > y.enterpriseId ? 1 : x.cluster - y.cluster));
  const assigned: (string | undefined)[] = clusters.map(() => undefined);
  const taken = new Set<string>();
  for (const o of options) {
    if (assigned[o.cluster] === undefined && !taken.has(o.enterpriseId)) {
      assigned[o.cluster] = o.enterpriseId;
      taken.add(o.enterpriseId);
    }
  }
  return assigned;
}

/**
 * Writes a re-clustering of records (the caller holds the locks of their enterprises): records move to
 * their cluster's enterprise (`auto-linked`, detail `reclustered`), an enterprise left without records is
 * merged into the one most of them went to (inactive golden record with `replaced-by`, an
 * `enterprise-merged` event listing them: what an unmerge puts back), new enterprises are founded for
 * split-off clusters, and every golden record touched is rewritten.
 */
export async function applyPartition(
  enterprises: Enterprises,
  clusters: string[][],
  currentOf: Map<string, string>,
  pending?: PendingSource,
  now = Date.now(),
): Promise<AppliedPartition> {
  const store = enterprises.store;
  const assigned = assignEnterprises(clusters, currentOf);
  const enterpriseOf = new Map<string, string>();
  const created = new Set<string>();
  for (const [i, members] of clusters.entries()) {
    let enterpriseId = assigned[i];
    if (!enterpriseId) {
      enterpriseId = newResourceId();
      created.add(enterpriseId);
      await store.createEnterprise(enterpriseId, now);
      await enterprises.record({ action: 'enterprise-created', enterpriseId, patientId: members[0] });
    }
    for (const id of members) enterpriseOf.set(id, enterpriseId);
  }
  if (pending) {
    pending.record.enterpriseId = enterpriseOf.get(pending.record.patientId) as string;
    await store.saveSource(pending.record, pending.keys, pending.replacing);
  }
  for (const [id, into] of enterpriseOf) {
    const from = currentOf.get(id);
    if (id === pending?.record.patientId || !from || from === into) continue;
    await store.moveSources([id], into, 'auto', now);
    await enterprises.record({ action: 'auto-linked', enterpriseId: into, patientId: id, detail: { reclustered: true, from } });
  }
  const touched = new Set([...enterpriseOf.values()]);
  for (const old of new Set(currentOf.values())) {
    if (!old || touched.has(old)) continue;
    // Every record it held went elsewhere: it continues as the enterprise most of them joined.
    const moved = [...currentOf].filter(([, e]) => e === old).map(([id]) => id);
    const tally = new Map<string, number>();
    for (const id of moved) tally.set(enterpriseOf.get(id) as string, (tally.get(enterpriseOf.get(id) as string) ?? 0) + 1);
    const [into] = [...tally].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))[0];
    await enterprises.retireInto(old, into, moved, undefined, now);
  }
  for (const enterpriseId of touched) await enterprises.refreshGolden(enterpriseId);
  return { enterpriseOf, created };
}
