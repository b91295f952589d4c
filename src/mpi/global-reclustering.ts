import type { Repository } from '../store/repository.js';
import { firstNameDateKey } from './blocking.js';
import { Enterprises } from './enterprises.js';
import type { PersonFeatures } from './features.js';
import { applyPartition } from './identity-partition.js';
import type { LinkedBy } from './mpi-store.js';
import type { MatchModel } from './match-model.js';
import { fullNameKey, type NameFrequencies } from './name-frequency.js';
import { PairJudge } from './pair-judge.js';
import { CandidatePairs } from './candidate-pairs.js';
import { clusterRecords, type ClusterMember, type LinkEdge } from './reclustering.js';

/**
 * A blocking key shared by more records than this says too little on its own to compare them all (their
 * other keys still meet): the same bound as incremental matching reads per key, applied here to the whole
 * key so that the pairs compared do not depend on which records arrived last.
 */
const MAX_KEY_GROUP = 64;
/** Rows of mpi_block read per query. */
const PAGE = 20_000;
/** Changed identities written per transaction. */
const CHUNK = 200;

export interface ReclusterSummary {
  /** Records whose identity changed. */
  moved: number;
  passes: number;
}

/**
 * The second step of `tessera mpi rebuild`: every record clustered again from the pairs blocking
 * offers, strongest link first (reclustering.ts), so that the index reaches the same partition whatever
 * order the records came in. Identities a steward shaped stay whole; steward rejections hold. Repeated
 * until nothing moves (at most three passes: the name-frequency weights count identities, which the
 * first pass may change).
 */
export async function reclusterAll(repo: Repository, model: MatchModel, names: NameFrequencies): Promise<ReclusterSummary> {
  let moved = 0;
  let passes = 0;
  while (passes < 3) {
    passes++;
    const changed = await reclusterPass(repo, model, names);
    moved += changed;
    if (!changed) break;
  }
  return { moved, passes };
}

async function reclusterPass(repo: Repository, model: MatchModel, names: NameFrequencies): Promise<number> {
  const { members, currentOf } = await readMembers(repo);
  const rejected = new Set(
    (await repo.sql.query<{ patient_a: string; patient_b: string }>("SELECT patient_a, patient_b FROM mpi_pair WHERE status = 'rejected'")).map((r) => `${r.patient_a}|${r.patient_b}`),
  );
  // Full names borne by more than one record: counted, not searched for (indexOf per record made a pass
  // quadratic in the index: 2.7 s at 80,000 records, hours at a million).
  const bearing = new Map<string, number>();
  for (const m of members.values()) {
    const key = fullNameKey(m.features);
    if (key) bearing.set(key, (bearing.get(key) ?? 0) + 1);
  }
  const sharedKeys = [...bearing].filter(([, n]) => n > 1).map(([key]) => key);
  const shared = new Set(sharedKeys);
  const numbered = [...members.values()];
  const dateKeys = numbered.filter((m) => shared.has(fullNameKey(m.features))).map((m) => firstNameDateKey(m.features) ?? '');
  const judge = new PairJudge(model, await names.bearers(repo.sql, sharedKeys, dateKeys), currentOf, rejected);
  const numberOf = new Map(numbered.map((m, i) => [m.patientId, i]));
  const pairs = new CandidatePairs(numbered.length);
  for await (const group of keyGroups(repo)) {
    if (group.length > MAX_KEY_GROUP) continue;
    pairs.addGroup(group.map((id) => numberOf.get(id)).filter((i): i is number => i !== undefined));
  }
  const edges: LinkEdge[] = [];
  for (const [a, b] of pairs.distinct()) {
    const edge = judge.edge(numbered[a], numbered[b]);
    if (edge) edges.push(edge);
  }
  const { clusters } = clusterRecords(numbered, edges, judge.conflicts);
  // Only the identities that change are written: clusters grouped with every cluster that shares a
  // current enterprise with them, so each write sees whole enterprises.
  const membersOf = new Map<string, string[]>();
  for (const [patientId, enterpriseId] of currentOf) {
    const list = membersOf.get(enterpriseId);
    if (list) list.push(patientId);
    else membersOf.set(enterpriseId, [patientId]);
  }
  const changedClusters = clusters.filter((c) => {
    const enterprises = new Set(c.map((id) => currentOf.get(id) as string));
    return enterprises.size !== 1 || membersOf.get([...enterprises][0])?.length !== c.length;
  });
  if (!changedClusters.length) return 0;
  const clusterOf = new Map<string, number>();
  clusters.forEach((c, i) => c.forEach((id) => clusterOf.set(id, i)));
  const done = new Set<number>();
  const components: number[][] = [];
  for (const c of changedClusters) {
    const start = clusterOf.get(c[0]) as number;
    if (done.has(start)) continue;
    const component: number[] = [];
    const queue = [start];
    done.add(start);
    while (queue.length) {
      const i = queue.pop() as number;
      component.push(i);
      for (const id of clusters[i]) {
        for (const other of membersOf.get(currentOf.get(id) as string) ?? []) {
          const j = clusterOf.get(other) as number;
          if (!done.has(j)) {
            done.add(j);
            queue.push(j);
          }
        }
      }
    }
    components.push(component);
  }
  let moved = 0;
  for (let i = 0; i < components.length; i += CHUNK) {
    await repo.transaction(async (tx) => {
      const enterprises = new Enterprises(tx, 'mpi');
      for (const component of components.slice(i, i + CHUNK)) {
        const parts = component.map((k) => clusters[k]);
        const ids = parts.flat();
        await enterprises.lockAll(ids.map((id) => currentOf.get(id) as string));
        const applied = await applyPartition(enterprises, parts, new Map(ids.map((id) => [id, currentOf.get(id) as string])));
        moved += ids.filter((id) => applied.enterpriseOf.get(id) !== currentOf.get(id)).length;
      }
    });
  }
  return moved;
}

/**
 * Every record of the index with its features, and where each is now; the features' JSON text goes once
 * parsed. A pass holds every record's parsed features (about 2 KB each): 3.2 GB peak RSS for the whole
 * pass at 680,000 records (docs/matching.md, "Batch mode").
 */
async function readMembers(repo: Repository): Promise<{ members: Map<string, ClusterMember>; currentOf: Map<string, string> }> {
  const read = await repo.sql.query<{ patient_id: string; enterprise_id: string; features: string; linked_by: LinkedBy }>(
    // In patient id order, as keyGroups lists each key's records: a pair is judged with the same record first.
    'SELECT patient_id, enterprise_id, features, linked_by FROM mpi_source ORDER BY patient_id',
  );
  const steward = new Set(read.filter((r) => r.linked_by === 'steward').map((r) => r.enterprise_id));
  const members = new Map<string, ClusterMember>();
  const currentOf = new Map<string, string>();
  for (const r of read) {
    members.set(r.patient_id, { patientId: r.patient_id, features: JSON.parse(r.features) as PersonFeatures, unit: steward.has(r.enterprise_id) ? r.enterprise_id : undefined });
    currentOf.set(r.patient_id, r.enterprise_id);
  }
  return { members, currentOf };
}

/** The records sharing each blocking key, key by key, read in pages. */
async function* keyGroups(repo: Repository): AsyncGenerator<string[]> {
  let after = { key: '', patient: '' };
  let group: string[] = [];
  let groupKey: string | undefined;
  for (;;) {
    const page = await repo.sql.query<{ key: string; patient_id: string }>(
      'SELECT key, patient_id FROM mpi_block WHERE key > ? OR (key = ? AND patient_id > ?) ORDER BY key, patient_id LIMIT ?',
      [after.key, after.key, after.patient, PAGE],
    );
    for (const row of page) {
      if (row.key !== groupKey) {
        if (group.length > 1) yield group;
        group = [];
        groupKey = row.key;
      }
      group.push(row.patient_id);
    }
    if (page.length < PAGE) break;
    const last = page[page.length - 1];
    after = { key: last.key, patient: last.patient_id };
  }
  if (group.length > 1) yield group;
}
