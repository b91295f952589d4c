import { compareFeatures } from './comparison.js';
import { memberConflicts, type MatchDecision, type MatchModel, type SharedName } from './match-model.js';
import { orderedPair } from './mpi-store.js';
import { fullNameKey } from './name-frequency.js';
import { firstNameDateKey } from './blocking.js';
import type { ClusterMember, LinkEdge } from './reclustering.js';

/** How many people bear each full name, as NameFrequencies.bearers counts them. */
export interface NameBearers {
  byKey: Map<string, number>;
  /** People sharing each first-name-and-birth-date key (blocking.ts firstNameDateKey). */
  byDateKey: Map<string, number>;
  records: number;
}

/**
 * The model's view of two records for re-clustering: their pairwise decision (with the name-frequency
 * weight when they share a full name, counted as the linker counts it: the people bearing the name
 * besides the two records' own), whether it is a link, and what forbids them being one person.
 */
export class PairJudge {
  /**
   * Decisions already made, up to REMEMBERED_DECISIONS: a linker's re-clustering (a new record and the
   * identities it meets: up to 60 records taken apart, 1,770 pairs) asks for the same pairs as links, as
   * conflicts and as the new record's partners; a whole index's tens of millions of candidate pairs are
   * judged once each and mostly not kept (a decision with its contributions takes about a kilobyte: keeping every one held 11.8 GB at
   * 680,000 records).
   */
  private readonly decisions = new Map<string, MatchDecision>();
  /** What forbids each pair a group join has checked: a join refused once is tried again by every weaker link between the two groups. */
  private readonly conflictsOf = new Map<string, string[]>();

  constructor(
    private readonly model: MatchModel,
    private readonly bearers: NameBearers | undefined,
    /** Each record's enterprise before re-clustering ('' for a record not in one yet). */
    private readonly enterpriseOf: Map<string, string>,
    /** Pairs a steward ruled apart, as `a|b` with a < b. */
    private readonly rejected: Set<string>,
  ) {}

  decide(a: ClusterMember, b: ClusterMember): MatchDecision {
    const key = pairKey(a, b);
    let decision = this.decisions.get(key);
    if (!decision) {
      decision = this.model.decide(compareFeatures(a.features, b.features), this.sharedName(a, b));
      if (this.decisions.size < REMEMBERED_DECISIONS) this.decisions.set(key, decision);
    }
    return decision;
  }

  /** The pair as a link of the clustering, when the model would link it on its own. */
  edge(a: ClusterMember, b: ClusterMember): LinkEdge | undefined {
    if (this.rejected.has(pairKey(a, b))) return undefined;
    const decision = this.decide(a, b);
    return decision.outcome === 'auto-link' ? { a: a.patientId, b: b.patientId, score: decision.score } : undefined;
  }

  /**
   * Why the two cannot be one identity: a steward's rejection, or a contradiction (different identifiers,
   * Jr/Sr, sexes, unrelated birth dates) unless the pair would link on its own (a registration error in
   * one field of one copy is weighed, not taken as another person).
   */
  readonly conflicts = (a: ClusterMember, b: ClusterMember): string[] => {
    const key = pairKey(a, b);
    let reasons = this.conflictsOf.get(key);
    if (!reasons) {
      if (this.rejected.has(key)) reasons = ['a data steward ruled them apart'];
      else reasons = this.decide(a, b).outcome === 'auto-link' ? NONE : memberConflicts(compareFeatures(a.features, b.features));
      this.conflictsOf.set(key, reasons);
    }
    return reasons;
  };

  private sharedName(a: ClusterMember, b: ClusterMember): SharedName | undefined {
    const key = fullNameKey(a.features);
    if (!this.bearers || !key || key !== fullNameKey(b.features)) return undefined;
    const own = new Set([this.enterpriseOf.get(a.patientId), this.enterpriseOf.get(b.patientId)].filter(Boolean));
    const dateKey = firstNameDateKey(a.features);
    const sharing = dateKey && dateKey === firstNameDateKey(b.features) ? own.size : Math.min(own.size, 1);
    return {
      others: Math.max(0, (this.bearers.byKey.get(key) ?? 0) - own.size),
      records: this.bearers.records,
      dateSharers: dateKey === undefined ? undefined : Math.max(0, (this.bearers.byDateKey.get(dateKey) ?? 0) - sharing),
    };
  }
}

/** Decisions a judge keeps at most (about 10 MB): a linker's re-clustering keeps them all, a whole index's pass a few. */
const REMEMBERED_DECISIONS = 10_000;

/** No reason: one shared empty list, not one per pair. */
const NONE: string[] = [];

function pairKey(a: ClusterMember, b: ClusterMember): string {
  return orderedPair(a.patientId, b.patientId).join('|');
}
