import type { Resource } from '@medplum/fhirtypes';
import { badRequest, gone, notFound, preconditionFailed } from '../fhir/outcome.js';
import { validateFhirResource } from '../fhir/validation.js';
import { extractIndexRows } from '../search/index-values.js';
import { labelBitsOf } from '../labels/label-bits.js';
import { labelled } from '../labels/labeler.js';
import type { Database, SqlExecutor, SqlValue } from './database.js';
import type { IndexRows } from '../search/index-values.js';
import { deleteIndexRows, indexRowSets, type IndexedResource } from './index-writer.js';
import { allocateResourceKeys } from './resource-key.js';
import { isUnchangedUpdate } from './unchanged-update.js';
import { newResourceId } from './resource-id.js';

export const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

export type WriteMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface WriteResult<T extends Resource = Resource> {
  resource: T;
  created: boolean;
  /** An update equal to the current version: nothing was written (src/store/unchanged-update.ts). */
  unchanged?: boolean;
}

export interface HistoryEntry {
  type: string;
  id: string;
  versionId: number;
  lastUpdated: number;
  method: WriteMethod;
  resource?: Resource;
}

export interface HistoryQuery {
  type?: string;
  id?: string;
  since?: number;
  count: number;
  offset: number;
}

interface CurrentRow {
  rk: number;
  version_id: number;
  deleted: number;
  content?: string | null;
}

/** One resource to write: a create with a fresh id skips the lookup of a previous version. */
interface PendingWrite {
  resource: Resource;
  method: WriteMethod;
  fresh: boolean;
  ifMatch?: number;
}

/**
 * Reacts to writes of some resource types inside the writing transaction (the master patient index links
 * every Patient as it is written). Its own writes go through the same repository and commit or roll back
 * with the write that caused them.
 */
export interface WriteObserver {
  readonly types: ReadonlySet<string>;
  written(repo: Repository, resources: Resource[]): Promise<void>;
  deleted(repo: Repository, type: string, id: string): Promise<void>;
  /**
   * The id of a stored resource that a create of `resource` stands for, if any: the master patient index
   * knows a source's Patient by its MRN, so a re-sent record updates the one already here.
   */
  existingFor?(repo: Repository, resource: Resource): Promise<string | undefined>;
  /**
   * Completes resources of any type before they are compared with their stored version and indexed,
   * inside the writing transaction: participants' local codes get their standard codings (src/codes).
   * Returns the resources to write instead, in the same order (the same objects when nothing changed).
   */
  prepare?(repo: Repository, resources: Resource[]): Promise<Resource[]>;
  /**
   * Whether this write (as `prepare` returned it) changes what the observer keeps outside the stored JSON
   * (a Subscription's write-only values): an update equal to the stored version is then still written.
   */
  keepsNewValues?(resource: Resource): boolean;
}

/** Thrown inside `Repository.optimistically` to give up the attempt without savepoints and run it again with them. */
export class RedoWithSavepoints extends Error {}

export function versionTag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

/** Parses an If-Match header value (W/"3", "3" or 3) to a version number. */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (!header) {
    return undefined;
  }
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(header.trim());
  if (!m) {
    throw badRequest(`Invalid If-Match header: ${header}`);
  }
  return Number(m[1]);
}

/**
 * The FHIR resource store: versioned writes with history, soft delete, optimistic locking, and the search
 * index kept in step with every write inside the same transaction. Backend-neutral: it only speaks the
 * portable SQL of `SqlExecutor`.
 */
export class Repository {
  private savepoints = 0;
  /** Set when a nested transaction failed in optimistic mode: the enclosing transaction must be redone. */
  private optimisticFailure = false;

  constructor(
    readonly db: Database,
    private readonly executor: SqlExecutor = db,
    /** Whether this repository works inside a transaction (its `transaction` then nests). */
    readonly inTransaction = false,
    private readonly optimisticNesting = false,
    private readonly observers: WriteObserver[] = [],
  ) {}

  /**
   * Warnings the write path owes its caller (an identifier the patient index cannot use, a source MRN
   * reused for another person), kept per transaction until the interaction that wrote takes them into
   * its response. Keyed by the transaction's executor, which every view of the transaction shares.
   */
  private static readonly pendingWarnings = new WeakMap<object, { text: string; about?: string }[]>();

  /** Adds a warning for the caller of the current write (observers call this); `about`: the resource it concerns ("Patient/{id}"). */
  warn(text: string, about?: string): void {
    const list = Repository.pendingWarnings.get(this.executor) ?? [];
    list.push({ text, about });
    Repository.pendingWarnings.set(this.executor, list);
  }

  /**
   * The warnings given since the last call, for the response of the write that caused them; with `about`,
   * only those concerning that resource (a transaction's grouped creates answer each entry with its own).
   */
  takeWarnings(about?: string): string[] {
    const list = Repository.pendingWarnings.get(this.executor) ?? [];
    const taken = about ? list.filter((w) => w.about === about) : list;
    const kept = about ? list.filter((w) => w.about !== about) : [];
    if (kept.length) Repository.pendingWarnings.set(this.executor, kept);
    else Repository.pendingWarnings.delete(this.executor);
    return taken.map((w) => w.text);
  }

  /** Registers an observer of writes (at start-up, on the root repository). */
  observe(observer: WriteObserver): void {
    this.observers.push(observer);
  }

  /** The registered observer of this class, if any (e.g. the master patient index, for its operations). */
  observerOf<T extends WriteObserver>(kind: abstract new (...args: never[]) => T): T | undefined {
    return this.observers.find((o): o is T => o instanceof kind);
  }

  /**
   * Inside a transaction, a view whose nested transactions take no SAVEPOINT (each costs a RELEASE that
   * showed up at 4 % of bulk ingest): if one of them fails, `failedOptimistically` turns true and the
   * caller must roll the whole transaction back and redo it with real savepoints.
   */
  optimistic(): Repository {
    if (!this.inTransaction) {
      throw new Error('optimistic() needs a transaction');
    }
    return new Repository(this.db, this.executor, true, true, this.observers);
  }

  /**
   * Inside a transaction, a view whose nested transactions join it without a SAVEPOINT: for writes whose
   * failure fails the enclosing work anyway (the golden records the patient index writes beside a
   * Patient), where a savepoint would only cost two round trips. An error from it must not be caught
   * and carried on from.
   */
  joined(): Repository {
    return this.inTransaction ? new Repository(this.db, this.executor, true, true, this.observers) : this;
  }

  get failedOptimistically(): boolean {
    return this.optimisticFailure;
  }

  /**
   * Runs `fn` in a transaction whose nested transactions take no savepoint (`optimistic()`); if one of
   * them failed (or `fn` throws RedoWithSavepoints), that transaction is rolled back and `fn` runs again
   * in one with real savepoints, so that only the failed part is undone. For batches of independent
   * work (Bundles of a bulk load, HL7 messages) where failures are rare and a savepoint each is not.
   */
  async optimistically<T>(fn: (repo: Repository, optimistic: boolean) => Promise<T>): Promise<T> {
    try {
      return await this.transaction(async (tx) => {
        const repo = tx.optimistic();
        const result = await fn(repo, true);
        if (repo.failedOptimistically) {
          throw new RedoWithSavepoints();
        }
        return result;
      });
    } catch (err) {
      if (!(err instanceof RedoWithSavepoints)) {
        throw err;
      }
    }
    return this.transaction((tx) => fn(tx, false));
  }

  get sql(): SqlExecutor {
    return this.executor;
  }

  /**
   * Runs `fn` atomically with a repository bound to the transaction. Nested inside another transaction it
   * is a SAVEPOINT: a failure undoes only its own writes (a batch entry, one Bundle of a bulk load) and
   * the outer transaction goes on.
   */
  async transaction<T>(fn: (repo: Repository) => Promise<T>): Promise<T> {
    if (!this.inTransaction) {
      return this.db.transaction((tx) => fn(new Repository(this.db, tx, true, false, this.observers)));
    }
    if (this.optimisticNesting) {
      try {
        return await fn(this);
      } catch (err) {
        this.optimisticFailure = true;
        throw err;
      }
    }
    const name = `sp${++this.savepoints}`;
    await this.sql.exec(`SAVEPOINT ${name}`);
    try {
      const result = await fn(this);
      await this.sql.exec(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (err) {
      await this.sql.exec(`ROLLBACK TO SAVEPOINT ${name}`);
      await this.sql.exec(`RELEASE SAVEPOINT ${name}`);
      throw err;
    }
  }

  /**
   * The stored resource a create of `resource` stands for (WriteObserver.existingFor), so that a source
   * re-sending a record updates it instead of adding a duplicate. Call it inside the write transaction
   * that acts on the answer: observers lock what they look up.
   */
  async existingFor(resource: Resource): Promise<string | undefined> {
    for (const observer of this.observers) {
      if (observer.existingFor && observer.types.has(resource.resourceType)) {
        const id = await observer.existingFor(this, resource);
        if (id) {
          return id;
        }
      }
    }
    return undefined;
  }

  /** Whether any of these resources, prepared as creates, stands for a stored one (see existingFor). */
  async anyExisting(resources: readonly { type: string; content: string }[]): Promise<boolean> {
    for (const r of resources) {
      if (this.observers.some((o) => o.existingFor && o.types.has(r.type)) && (await this.existingFor(JSON.parse(r.content) as Resource))) {
        return true;
      }
    }
    return false;
  }

  async create<T extends Resource>(resource: T, options: { id?: string } = {}): Promise<T> {
    const valid = validateFhirResource(resource) as T;
    const id = options.id ?? newResourceId();
    const [written] = await this.transaction((repo) =>
      repo.writeAll([{ resource: { ...valid, id }, method: 'POST', fresh: !options.id }]),
    );
    return written.resource as T;
  }

  /** Update, or create with the client's id when it does not exist yet (update-as-create). */
  async update<T extends Resource>(resource: T, options: { ifMatch?: number } = {}): Promise<WriteResult<T>> {
    const valid = validateFhirResource(resource) as T;
    if (!valid.id || !ID_RE.test(valid.id)) {
      throw badRequest('Resource id is missing or not a valid FHIR id', 'id');
    }
    const [written] = await this.transaction((repo) =>
      repo.writeAll([{ resource: valid, method: 'PUT', fresh: false, ifMatch: options.ifMatch }]),
    );
    return written as WriteResult<T>;
  }

  /**
   * Writes many identified resources in one transaction with batched index inserts (transactions, imports).
   * `fresh` promises that the ids were just generated by the server, so no previous version is looked up.
   */
  async writeMany(writes: { resource: Resource; method: 'POST' | 'PUT' }[], options: { fresh: boolean; validated?: boolean }): Promise<WriteResult[]> {
    const pending = writes.map(({ resource, method }) => {
      const valid = options.validated ? resource : validateFhirResource(resource);
      if (!valid.id || !ID_RE.test(valid.id)) {
        throw badRequest(`${valid.resourceType} id is missing or not a valid FHIR id`, 'id');
      }
      return { resource: valid, method, fresh: options.fresh };
    });
    return this.transaction((repo) => repo.writeAll(pending));
  }

  /**
   * Stores resources prepared off the request path (src/ingest/prepared-bundle.ts): new ids, version 1,
   * JSON and index rows already computed, so nothing is looked up, validated or extracted here.
   */
  async writePrepared(prepared: { lastUpdated: number; resources: { type: string; id: string; content: string; rows: IndexRows }[] }): Promise<void> {
    const now = prepared.lastUpdated;
    await this.transaction(async (repo) => {
      const rks = await allocateResourceKeys(repo.sql, this.db.dialect, prepared.resources.length, this.db);
      await repo.insertVersions(
        prepared.resources.map((r, i) => [rks[i], r.type, r.id, 1, now, 0, 'POST', r.content, labelBitsOf(r.rows)]),
        prepared.resources.map((r, i) => ({ ...r, rk: rks[i] })),
      );
      await repo.notifyWritten(() => prepared.resources.map((r) => ({ type: r.type, resource: () => JSON.parse(r.content) as Resource })));
    });
  }

  async delete(type: string, id: string, options: { ifMatch?: number } = {}): Promise<{ versionId?: number }> {
    return this.transaction(async (repo) => {
      const current = await repo.current(type, id, true);
      if (!current) {
        throw notFound(`${type}/${id} not found`);
      }
      if (current.deleted) {
        return {};
      }
      checkIfMatch(type, id, current.version_id, options.ifMatch);
      const versionId = current.version_id + 1;
      await repo.archiveCurrentVersion(type, id);
      await repo.sql.run(
        "UPDATE resource SET version_id = ?, last_updated = ?, deleted = 1, method = 'DELETE', content = NULL WHERE type = ? AND id = ?",
        [versionId, Date.now(), type, id],
      );
      await deleteIndexRows(repo.sql, repo.db.dialect, [current.rk]);
      for (const observer of repo.observers) {
        if (observer.types.has(type)) {
          await observer.deleted(repo, type, id);
        }
      }
      return { versionId };
    });
  }

  async read<T extends Resource = Resource>(type: string, id: string): Promise<T> {
    const rows = await this.sql.query<{ deleted: number; content: string | null }>(
      'SELECT deleted, content FROM resource WHERE type = ? AND id = ?',
      [type, id],
    );
    if (!rows.length) {
      throw notFound(`${type}/${id} not found`);
    }
    if (rows[0].deleted || !rows[0].content) {
      throw gone(`${type}/${id} has been deleted`);
    }
    return JSON.parse(rows[0].content) as T;
  }

  /**
   * Reads many resources by type and id; missing and deleted ones are left out, and so are those not
   * meeting `where` (SQL over the resource-table alias `r`, e.g. the access policy's row condition).
   */
  async readMany(type: string, ids: string[], where?: { sql: string; params: SqlValue[] }): Promise<Resource[]> {
    const out: Resource[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = await this.sql.query<{ content: string }>(
        `SELECT r.content FROM resource r WHERE r.type = ? AND r.deleted = 0 AND r.id IN (${chunk.map(() => '?').join(',')})${where ? ` AND ${where.sql}` : ''}`,
        [type, ...chunk, ...(where?.params ?? [])],
      );
      rows.forEach((r) => out.push(JSON.parse(r.content)));
    }
    return out;
  }

  async vread<T extends Resource = Resource>(type: string, id: string, versionId: string): Promise<T> {
    if (!/^\d+$/.test(versionId)) {
      throw notFound(`${type}/${id}/_history/${versionId} not found`);
    }
    const version = [type, id, Number(versionId)];
    const rows = await this.sql.query<{ deleted: number; content: string | null }>(
      `SELECT deleted, content FROM resource WHERE type = ? AND id = ? AND version_id = ?
       UNION ALL SELECT deleted, content FROM resource_history WHERE type = ? AND id = ? AND version_id = ?`,
      [...version, ...version],
    );
    if (!rows.length) {
      throw notFound(`${type}/${id}/_history/${versionId} not found`);
    }
    if (rows[0].deleted || !rows[0].content) {
      throw gone(`${type}/${id}/_history/${versionId} is a deletion`);
    }
    return JSON.parse(rows[0].content) as T;
  }

  async history(query: HistoryQuery): Promise<{ entries: HistoryEntry[]; total: number }> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.type) {
      where.push('type = ?');
      params.push(query.type);
    }
    if (query.id) {
      where.push('id = ?');
      params.push(query.id);
    }
    if (query.since !== undefined) {
      where.push('last_updated >= ?');
      params.push(query.since);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    // The current versions live in `resource`, the superseded ones in `resource_history`.
    const columns = 'type, id, version_id, last_updated, method, content';
    const rows = await this.sql.query<{
      type: string;
      id: string;
      version_id: number;
      last_updated: number;
      method: WriteMethod;
      content: string | null;
    }>(
      `SELECT ${columns} FROM resource ${clause} UNION ALL SELECT ${columns} FROM resource_history ${clause}
       ORDER BY last_updated DESC, type, id, version_id DESC LIMIT ? OFFSET ?`,
      [...params, ...params, query.count, query.offset],
    );
    const [{ n }] = await this.sql.query<{ n: number }>(
      `SELECT (SELECT COUNT(*) FROM resource ${clause}) + (SELECT COUNT(*) FROM resource_history ${clause}) AS n`,
      [...params, ...params],
    );
    return {
      total: Number(n),
      entries: rows.map((r) => ({
        type: r.type,
        id: r.id,
        versionId: r.version_id,
        lastUpdated: r.last_updated,
        method: r.method,
        resource: r.content ? JSON.parse(r.content) : undefined,
      })),
    };
  }

  /** True when a resource (even a deleted one) with this type and id has ever existed. */
  async exists(type: string, id: string): Promise<boolean> {
    return !!(await this.current(type, id, false));
  }

  private async current(type: string, id: string, lock: boolean, withContent = false): Promise<CurrentRow | undefined> {
    const rows = await this.sql.query<CurrentRow>(
      `SELECT rk, version_id, deleted${withContent ? ', content' : ''} FROM resource WHERE type = ? AND id = ?${lock ? this.db.dialect.forUpdate : ''}`,
      [type, id],
    );
    return rows[0];
  }

  private async writeAll(pending: PendingWrite[]): Promise<WriteResult[]> {
    pending = await this.prepared(pending);
    const now = Date.now();
    const lastUpdated = new Date(now).toISOString();
    const results: WriteResult[] = [];
    const created: { type: string; id: string; method: WriteMethod; content: string; rows: IndexRows }[] = [];
    const reindexed: IndexedResource[] = [];
    for (const item of pending) {
      // Security labels are set on every version as it is written (src/labels), before the comparison with
      // the stored version (which carries them) and before indexing (searches and the policy read _security).
      const incoming = labelled(item.resource);
      const { resourceType: type, id } = incoming as Resource & { id: string };
      const current = item.fresh ? undefined : await this.current(type, id, true, true);
      if (item.ifMatch !== undefined) {
        checkIfMatch(type, id, current && !current.deleted ? current.version_id : undefined, item.ifMatch);
      }
      const stored = current?.content && !current.deleted ? (JSON.parse(current.content) as Resource) : undefined;
      if (stored && isUnchangedUpdate(stored, incoming) && !this.observers.some((o) => o.keepsNewValues?.(incoming))) {
        results.push({ resource: stored, created: false, unchanged: true });
        continue;
      }
      const versionId = (current?.version_id ?? 0) + 1;
      const resource = {
        ...incoming,
        meta: { ...incoming.meta, versionId: String(versionId), lastUpdated },
      } as Resource & { id: string };
      const content = JSON.stringify(resource);
      const rows = extractIndexRows(resource);
      if (current) {
        await this.archiveCurrentVersion(type, id);
        await this.sql.run(
          'UPDATE resource SET version_id = ?, last_updated = ?, deleted = 0, method = ?, content = ?, labels = ? WHERE type = ? AND id = ?',
          [versionId, now, item.method, content, labelBitsOf(rows), type, id],
        );
        reindexed.push({ type, id, rk: current.rk, rows });
      } else {
        created.push({ type, id, method: item.method, content, rows });
      }
      results.push({ resource, created: !current || current.deleted === 1 });
    }
    await deleteIndexRows(
      this.sql,
      this.db.dialect,
      reindexed.map((r) => r.rk),
    );
    const rks = await allocateResourceKeys(this.sql, this.db.dialect, created.length, this.db);
    await this.insertVersions(
      created.map((c, i) => [rks[i], c.type, c.id, 1, now, 0, c.method, c.content, labelBitsOf(c.rows)]),
      [...reindexed, ...created.map((c, i) => ({ type: c.type, id: c.id, rk: rks[i], rows: c.rows }))],
    );
    await this.notifyWritten(() => results.filter((r) => !r.unchanged).map((r) => ({ type: r.resource.resourceType, resource: () => r.resource })));
    return results;
  }

  /** The writes as the observers' `prepare` hooks complete them. */
  private async prepared(pending: PendingWrite[]): Promise<PendingWrite[]> {
    for (const observer of this.observers) {
      if (observer.prepare) {
        const resources = await observer.prepare(this, pending.map((p) => p.resource));
        pending = pending.map((p, i) => (resources[i] === p.resource ? p : { ...p, resource: resources[i] }));
      }
    }
    return pending;
  }

  /** Hands the written resources of the observed types to each observer (parsing stored JSON only for those). */
  private async notifyWritten(written: () => { type: string; resource: () => Resource }[]): Promise<void> {
    if (!this.observers.length) {
      return;
    }
    const all = written();
    for (const observer of this.observers) {
      const mine = all.filter((w) => observer.types.has(w.type)).map((w) => w.resource());
      if (mine.length) {
        await observer.written(this, mine);
      }
    }
  }

  /** Moves the current version of a resource into `resource_history` before it is superseded. */
  private async archiveCurrentVersion(type: string, id: string): Promise<void> {
    await this.sql.run(
      `INSERT INTO resource_history (${HISTORY_COLUMNS.join(', ')}) SELECT ${HISTORY_COLUMNS.join(', ')} FROM resource WHERE type = ? AND id = ?`,
      [type, id],
    );
  }

  /** New current rows and the index rows of new and updated resources, each table in one batched insert (on PostgreSQL, one statement for all). */
  private async insertVersions(currentRows: SqlValue[][], indexed: IndexedResource[]): Promise<void> {
    await this.sql.insertRowSets([{ table: 'resource', columns: RESOURCE_COLUMNS, rows: currentRows }, ...indexRowSets(indexed)]);
  }
}

const HISTORY_COLUMNS = ['type', 'id', 'version_id', 'last_updated', 'deleted', 'method', 'content'] as const;
const RESOURCE_COLUMNS = ['rk', 'type', 'id', 'version_id', 'last_updated', 'deleted', 'method', 'content', 'labels'] as const;

function checkIfMatch(type: string, id: string, currentVersion: number | undefined, expected: number | undefined): void {
  if (expected !== undefined && currentVersion !== expected) {
    throw preconditionFailed(
      `Version conflict on ${type}/${id}: If-Match expected version ${expected}, current is ${currentVersion ?? 'none'}`,
    );
  }
}
