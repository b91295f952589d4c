import { conflict, notFound } from '../fhir/outcome.js';
import { newResourceId } from '../store/resource-id.js';
import type { Repository } from '../store/repository.js';
import { Enterprises } from './enterprises.js';
import type { SourceRecord } from './mpi-store.js';

export type ReviewDecision = 'accept' | 'reject';

/**
 * A data steward's decisions on enterprise identities. Each method runs inside the caller's write
 * transaction, locks the enterprises it changes, keeps every source record in exactly one enterprise,
 * rewrites the golden records and appends an event naming the steward and the reason.
 *
 * Rulings outlive the decision: a rejected pair (also written by unlink and unmerge) bars automatic
 * linking of those two records and their enterprises forever, whatever either source sends later.
 */
export class Stewardship {
  private readonly enterprises: Enterprises;

  constructor(repo: Repository, actor: string) {
    this.enterprises = new Enterprises(repo, actor);
  }

  private get store() {
    return this.enterprises.store;
  }

  private async source(patientId: string): Promise<SourceRecord> {
    const source = await this.store.source(patientId);
    if (!source) {
      throw notFound(`Patient/${patientId} is not a source record in the master patient index`);
    }
    return source;
  }

  /** A source record read again after its enterprise (and `others`) are locked, so that it cannot move meanwhile. */
  private async lockedSource(patientId: string, others: string[] = []): Promise<SourceRecord> {
    const before = await this.source(patientId);
    await this.enterprises.lockAll([before.enterpriseId, ...others]);
    const after = await this.source(patientId);
    if (after.enterpriseId !== before.enterpriseId) {
      throw conflict(`Patient/${patientId} moved to another enterprise identity while this decision was made; try again`);
    }
    return after;
  }

  /** Decides a possible match: accept links the two people (their enterprises become one), reject bars it. */
  async review(a: string, b: string, decision: ReviewDecision, reason: string | undefined): Promise<string[]> {
    const [first, second] = [await this.source(a), await this.source(b)];
    const pair = await this.store.pair(a, b);
    if (decision === 'reject') {
      if (first.enterpriseId === second.enterpriseId) {
        throw conflict(`Patient/${a} and Patient/${b} are already linked in one enterprise identity; unlink one of them instead`);
      }
      await this.store.rule(a, b, 'rejected', this.enterprises.actor, reason, Date.now());
      await this.enterprises.record({ action: 'review-rejected', enterpriseId: first.enterpriseId, patientId: a, reason, detail: { with: b, score: pair?.score } });
      return [first.enterpriseId, second.enterpriseId];
    }
    const into = await this.mergeEnterprises(first.enterpriseId, second.enterpriseId, reason);
    await this.store.rule(a, b, 'accepted', this.enterprises.actor, reason, Date.now());
    await this.enterprises.record({ action: 'review-accepted', enterpriseId: into, patientId: a, reason, detail: { with: b, score: pair?.score } });
    return [into];
  }

  /**
   * Puts one source record into the enterprise of `target` (a source record or an enterprise id). The
   * steward overrides any earlier rejection between them.
   */
  async link(patientId: string, target: string, reason: string | undefined): Promise<string[]> {
    const targetEnterprise = (await this.store.source(target))?.enterpriseId ?? target;
    const source = await this.lockedSource(patientId, [targetEnterprise]);
    const into = await this.enterprises.lockCurrent(targetEnterprise);
    if (into.status !== 'active') {
      throw conflict(`Enterprise identity ${target} is ${into.status}`);
    }
    if (into.enterpriseId === source.enterpriseId) {
      return [into.enterpriseId];
    }
    const now = Date.now();
    for (const member of await this.store.sourcesOf(into.enterpriseId)) {
      if ((await this.store.pair(patientId, member.patientId))?.status === 'rejected') {
        await this.store.rule(patientId, member.patientId, 'accepted', this.enterprises.actor, reason, now);
      }
    }
    await this.enterprises.move([patientId], source.enterpriseId, into.enterpriseId, 'steward', reason, now);
    await this.enterprises.record({ action: 'linked', enterpriseId: into.enterpriseId, patientId, reason, detail: { from: source.enterpriseId } });
    return [source.enterpriseId, into.enterpriseId];
  }

  /** Takes one source record out of its enterprise into one of its own, never to be linked back automatically. */
  async unlink(patientId: string, reason: string | undefined): Promise<string[]> {
    const source = await this.lockedSource(patientId);
    const others = (await this.store.sourcesOf(source.enterpriseId)).filter((s) => s.patientId !== patientId);
    if (!others.length) {
      throw conflict(`Patient/${patientId} is the only source record of its enterprise identity; there is nothing to unlink`);
    }
    const now = Date.now();
    const own = newResourceId();
    await this.store.createEnterprise(own, now);
    for (const other of others) {
      await this.store.rule(patientId, other.patientId, 'rejected', this.enterprises.actor, reason, now);
    }
    await this.enterprises.move([patientId], source.enterpriseId, own, 'steward', reason, now);
    await this.enterprises.record({ action: 'unlinked', enterpriseId: source.enterpriseId, patientId, reason, detail: { to: own } });
    return [source.enterpriseId, own];
  }

  /** Merges enterprise `from` into `into`: every source of `from` moves, `from` becomes a replaced-by record. */
  async merge(from: string, into: string, reason: string | undefined): Promise<string[]> {
    return [await this.mergeEnterprises(from, into, reason, true)];
  }

  /**
   * Undoes the latest merge of `enterpriseId`: the records it brought in go back to it (those that are
   * still there), it becomes active again, and the two are ruled apart so that matching does not redo it.
   */
  async unmerge(enterpriseId: string, reason: string | undefined): Promise<string[]> {
    const merged = await this.store.enterprise(enterpriseId);
    if (!merged) {
      throw notFound(`No enterprise identity ${enterpriseId}`);
    }
    if (merged.status !== 'merged' || !merged.mergedInto) {
      throw conflict(`Enterprise identity ${enterpriseId} is ${merged.status}, not merged`);
    }
    const survivor = merged.mergedInto;
    await this.enterprises.lockAll([enterpriseId, survivor]);
    if ((await this.store.enterprise(enterpriseId))?.mergedInto !== survivor) {
      throw conflict(`Enterprise identity ${enterpriseId} changed while this decision was made; try again`);
    }
    const event = await this.store.lastEvent(enterpriseId, 'enterprise-merged');
    const moved = ((event?.detail as { moved?: string[] } | undefined)?.moved ?? []).filter(Boolean);
    const present = new Set((await this.store.sourcesOf(survivor)).map((s) => s.patientId));
    const back = moved.filter((id) => present.has(id));
    const staying = [...present].filter((id) => !back.includes(id));
    if (!back.length || !staying.length) {
      throw conflict(`The records merged from ${enterpriseId} are no longer in ${survivor} beside others; link or unlink them one by one`);
    }
    const now = Date.now();
    await this.store.setEnterpriseStatus(enterpriseId, 'active', undefined, now);
    await this.store.moveSources(back, enterpriseId, 'steward', now);
    for (const a of back) {
      for (const b of staying) {
        await this.store.rule(a, b, 'rejected', this.enterprises.actor, reason, now);
      }
    }
    await this.enterprises.refreshGolden(enterpriseId);
    await this.enterprises.refreshGolden(survivor);
    await this.enterprises.record({ action: 'enterprise-unmerged', enterpriseId, reason, detail: { from: survivor, moved: back } });
    return [enterpriseId, survivor];
  }

  /**
   * One enterprise from two. Without an explicit direction the older enterprise survives (its id has
   * been handed out longest). Returns the survivor.
   */
  private async mergeEnterprises(a: string, b: string, reason: string | undefined, explicit = false): Promise<string> {
    await this.enterprises.lockAll([a, b]);
    const [first, second] = [await this.enterprises.lockCurrent(a), await this.enterprises.lockCurrent(b)];
    for (const e of [first, second]) {
      if (e.status !== 'active') {
        throw conflict(`Enterprise identity ${e.enterpriseId} is ${e.status}`);
      }
    }
    if (first.enterpriseId === second.enterpriseId) {
      return first.enterpriseId;
    }
    const [source, target] = explicit || first.createdAt > second.createdAt ? [first, second] : [second, first];
    const moved = (await this.store.sourcesOf(source.enterpriseId)).map((s) => s.patientId);
    await this.enterprises.move(moved, source.enterpriseId, target.enterpriseId, 'steward', reason);
    return target.enterpriseId;
  }
}
