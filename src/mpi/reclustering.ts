import { createHash } from 'node:crypto';
import type { PersonFeatures } from './features.js';

/** A source record taking part in a re-clustering. */
export interface ClusterMember {
  patientId: string;
  features: PersonFeatures;
  /**
   * Records with the same unit start (and stay) together: a steward's decision is not undone by the
   * matcher. Undefined: the record is a unit of its own.
   */
  unit?: string;
}

/** A pair the model would link on its own (pairwise auto-link), with its score. */
export interface LinkEdge {
  a: string;
  b: string;
  score: number;
}

/** Why two records cannot be one person (empty: nothing forbids it). */
export type ConflictJudge = (a: ClusterMember, b: ClusterMember) => string[];

/** A link the clustering wanted but refused, because a record on the other side contradicts one on this side. */
export interface BlockedLink extends LinkEdge {
  reasons: string[];
}

export interface Clustering {
  clusters: string[][];
  blocked: BlockedLink[];
}

/**
 * The identities a set of records forms, whatever order the records arrived in: links are taken
 * strongest first (score, then a tie-break on the records' content, never on ids, which follow arrival
 * order) and two groups are joined only when no record of one contradicts a record of the other
 * (different identifiers, Jr/Sr, sexes, unrelated birth dates, a steward's rejection). Greedy
 * agglomeration under cannot-link constraints: the result depends on the set of records and links, not
 * on the order they are given in.
 */
export function clusterRecords(members: ClusterMember[], edges: LinkEdge[], conflicts: ConflictJudge): Clustering {
  const byId = new Map(members.map((m) => [m.patientId, m]));
  const parent = new Map<string, string>();
  const groups = new Map<string, ClusterMember[]>();
  const find = (id: string): string => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root) as string;
    parent.set(id, root);
    return root;
  };
  const union = (x: string, y: string): void => {
    const [rx, ry] = [find(x), find(y)];
    if (rx === ry) return;
    parent.set(ry, rx);
    groups.set(rx, [...(groups.get(rx) ?? []), ...(groups.get(ry) ?? [])]);
    groups.delete(ry);
  };
  for (const m of members) {
    parent.set(m.patientId, m.patientId);
    groups.set(m.patientId, [m]);
  }
  const unitHead = new Map<string, string>();
  for (const m of members) {
    if (!m.unit) continue;
    const head = unitHead.get(m.unit);
    if (head) union(head, m.patientId);
    else unitHead.set(m.unit, m.patientId);
  }
  const print = new Map(members.map((m) => [m.patientId, fingerprint(m.features)]));
  const tieKey = (e: LinkEdge) => [print.get(e.a) as string, print.get(e.b) as string].sort().join('');
  const sorted = edges.filter((e) => byId.has(e.a) && byId.has(e.b)).map((e) => ({ e, tie: tieKey(e) }));
  sorted.sort((x, y) => y.e.score - x.e.score || (x.tie < y.tie ? -1 : x.tie > y.tie ? 1 : 0));
  const blocked: BlockedLink[] = [];
  for (const { e } of sorted) {
    const [ra, rb] = [find(e.a), find(e.b)];
    if (ra === rb) continue;
    const reasons = new Set<string>();
    for (const x of groups.get(ra) ?? []) {
      for (const y of groups.get(rb) ?? []) {
        for (const r of conflicts(x, y)) reasons.add(r);
      }
    }
    if (reasons.size) blocked.push({ ...e, reasons: [...reasons] });
    else union(ra, rb);
  }
  const clusters = [...groups.values()].map((g) => g.map((m) => m.patientId).sort());
  // Blocked links whose two records ended up together anyway (through other links) are no question.
  return { clusters, blocked: blocked.filter((b) => find(b.a) !== find(b.b)) };
}

/** A record's content, as an order-free tie-break between equally strong links. */
function fingerprint(features: PersonFeatures): string {
  return createHash('sha1').update(JSON.stringify(features)).digest('hex');
}
