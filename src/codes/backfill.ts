import { AsyncLocalStorage } from 'node:async_hooks';
import type { Resource } from '@medplum/fhirtypes';
import { FhirError } from '../fhir/outcome.js';
import type { SqlExecutor } from '../store/database.js';
import { currentResourcesAfter } from '../store/current-resources.js';
import type { Repository } from '../store/repository.js';
import { participantOfSource, sourceMessageId, targetsFor } from './code-map-store.js';
import { CODED_TYPES } from './coded-elements.js';
import { applyCodeMaps, codeKey, localCodeKeys } from './local-code-mapper.js';

/** Set while the exchange rewrites what already arrived: those writes are not new arrivals for the worklist. */
const backfilling = new AsyncLocalStorage<true>();

export function isBackfilling(): boolean {
  return !!backfilling.getStore();
}

/** Stored resources read (and at most rewritten) per backfill transaction. */
export const BACKFILL_BATCH = 500;

/**
 * Queues the local codes whose mapping changed, in the transaction of the ConceptMap write that changed
 * them; `CodeBackfill.drain` then redoes what already arrived with them, batch by batch, after that
 * write committed. A code queued again starts over (its mapping changed again).
 */
export async function queueBackfill(sql: SqlExecutor, codes: { participantId: string; system: string; code: string }[], now = Date.now()): Promise<void> {
  const sorted = [...codes].sort((a, b) => `${a.participantId}|${a.system}|${a.code}`.localeCompare(`${b.participantId}|${b.system}|${b.code}`));
  for (const c of sorted) {
    await sql.run(
      `INSERT INTO code_backfill (participant_id, system, code, queued_at, after_rk) VALUES (?, ?, ?, ?, -1)
       ON CONFLICT (participant_id, system, code) DO UPDATE SET queued_at = excluded.queued_at, after_rk = -1`,
      [c.participantId, c.system, c.code, now],
    );
  }
}

interface QueuedCode {
  participant_id: string;
  system: string;
  code: string;
  after_rk: number;
  queued_at: number;
}

/**
 * Applies changed mappings to what already arrived (decision 0024): every stored resource of the mapped
 * types is looked at once per queued code, in resource-key order, `BACKFILL_BATCH` at a time, each batch
 * its own transaction that also moves the queued codes' cursor (a stop resumes where it was). A scan,
 * not the token index: a local code may sit in an element no search parameter indexes (a unit, an
 * interpretation, a reaction substance). A resource carrying a queued code of its sender is written
 * again, and the write's prepare hook applies the current maps: a new version only if that changes it.
 */
export class CodeBackfill {
  private chain: Promise<number> = Promise.resolve(0);
  /** A drain asked for and not begun yet: it will see whatever is queued when it begins. */
  private waiting?: Promise<number>;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly repo: Repository,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Works through the queue until it is empty; returns how many resources got a new version. */
  drain(): Promise<number> {
    if (this.waiting) return this.waiting;
    const next = this.chain
      .catch(() => 0)
      .then(() => {
        this.waiting = undefined;
        return this.run();
      });
    this.waiting = next;
    this.chain = next;
    return next;
  }

  /** Drains now and every `intervalMs` (codes queued by another process, or a drain that failed). */
  start(intervalMs = 5000): void {
    this.stopped = false;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.background(), intervalMs).unref();
    this.background();
  }

  /** A ConceptMap write queued codes: drain once its transaction has had time to commit. */
  kick(): void {
    if (this.timer && !this.stopped) setTimeout(() => this.background(), 50).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.chain.catch(() => 0);
  }

  private background(): void {
    if (!this.stopped) this.drain().catch(this.onError);
  }

  private async run(): Promise<number> {
    let updated = 0;
    for (;;) {
      const step = await backfillStep(this.repo);
      updated += step.updated;
      if (step.done || this.stopped) return updated;
    }
  }
}

/** One batch in its own transaction; `done` once the queue is empty. */
export function backfillStep(repo: Repository): Promise<{ done: boolean; updated: number }> {
  return repo.transaction((tx) => backfillBatch(tx));
}

/** One batch: the next resources after the lowest cursor of the queue, rewritten where a queued code of their sender is on them. */
async function backfillBatch(tx: Repository): Promise<{ done: boolean; updated: number }> {
  const queued = await tx.sql.query<QueuedCode>('SELECT participant_id, system, code, after_rk, queued_at FROM code_backfill');
  if (!queued.length) return { done: true, updated: 0 };
  const cursor = Math.min(...queued.map((q) => Number(q.after_rk)));
  // Codes queued again after this read (a concurrent ConceptMap write) start over: left alone below.
  const seenUpTo = Math.max(...queued.map((q) => Number(q.queued_at)));
  const rows = await currentResourcesAfter(tx.sql, cursor, BACKFILL_BATCH, [...CODED_TYPES]);
  if (!rows.length) {
    // Every queued code has seen every resource (a code queued again meanwhile is back at -1: kept).
    await tx.sql.run('DELETE FROM code_backfill WHERE after_rk >= ? AND queued_at <= ?', [cursor, seenUpTo]);
    return { done: false, updated: 0 };
  }
  const cursorOf = new Map(queued.map((q) => [`${q.participant_id}:${codeKey(q.system, q.code)}`, Number(q.after_rk)]));
  let updated = 0;
  for (const { rk, resource } of rows) {
    const messageId = sourceMessageId(resource.meta?.source);
    if (!messageId) continue;
    const keys = localCodeKeys(resource);
    if (!keys.length) continue;
    const participantId = await participantOfSource(tx.sql, messageId);
    if (!participantId) continue;
    const due = keys.some((k) => {
      const after = cursorOf.get(`${participantId}:${codeKey(k.system, k.code)}`);
      return after !== undefined && after < rk;
    });
    if (due && (await rewrite(tx, resource))) updated++;
  }
  const last = rows[rows.length - 1].rk;
  await tx.sql.run('UPDATE code_backfill SET after_rk = ? WHERE after_rk >= ? AND after_rk < ? AND queued_at <= ?', [last, cursor, last, seenUpTo]);
  return { done: false, updated };
}

/**
 * Applies the current code maps to every stored resource of the mapped types that came from the
 * participant (all participants without one): `tessera codes backfill`, for maps that changed while
 * the queue was not drained, or to check. Each resource changed is a new version, in its own transaction.
 */
export async function backfillAll(repo: Repository, participantId: string | undefined, onProgress?: (seen: number, updated: number) => void): Promise<{ seen: number; updated: number }> {
  let seen = 0;
  let updated = 0;
  let after = -1;
  for (;;) {
    const rows = await currentResourcesAfter(repo.sql, after, BACKFILL_BATCH, [...CODED_TYPES]);
    if (!rows.length) break;
    after = rows[rows.length - 1].rk;
    for (const { resource } of rows) {
      seen++;
      const messageId = sourceMessageId(resource.meta?.source);
      if (!messageId || !localCodeKeys(resource).length) continue;
      if (participantId && (await participantOfSource(repo.sql, messageId)) !== participantId) continue;
      if (await rewrite(repo, resource)) updated++;
    }
    onProgress?.(seen, updated);
  }
  return { seen, updated };
}

/** Writes a stored resource again if the current maps change it (the write's prepare hook applies them). */
async function rewrite(repo: Repository, resource: Resource): Promise<boolean> {
  const messageId = sourceMessageId(resource.meta?.source);
  const participantId = messageId && (await participantOfSource(repo.sql, messageId));
  if (!participantId) return false;
  const keys = localCodeKeys(resource);
  if (!keys.length) return false;
  const targets = await targetsFor(repo.sql, participantId, keys.map((k) => k.code));
  const copy = structuredClone(resource);
  if (!applyCodeMaps(copy, (system, code) => targets.get(codeKey(system, code)) ?? []).changed) return false;
  try {
    const written = await backfilling.run(true, () => repo.update(copy, { ifMatch: Number(resource.meta?.versionId) }));
    return !written.unchanged;
  } catch (err) {
    // Written meanwhile: that write applied the current maps itself.
    if (err instanceof FhirError && (err.status === 409 || err.status === 412)) return false;
    throw err;
  }
}
