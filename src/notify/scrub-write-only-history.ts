import type { Subscription } from '@medplum/fhirtypes';
import type { Database, SqlExecutor, SqlValue } from '../store/database.js';
import { hideWriteOnly, type TakenValues, type WriteOnlyColumn } from './write-only-channel.js';

/**
 * Hides the write-only channel values (signing secret, headers: write-only-channel.ts) in every stored
 * Subscription version: versions written before they became write-only (decision 0037), or by the bulk
 * path before it took the ordinary one, carry them in their JSON, and a read of the version or the
 * history would show them. A schema migration runs it on start (schema.ts); it is idempotent (a hidden
 * value is the placeholder, which is left as it is).
 */

/** Versions read and rewritten per transaction: a large store is not rewritten in one long transaction. */
const BATCH = 200;

/**
 * Where versions are stored, each with the key its scan pages by (an index's order). The current
 * versions go first: a version superseded while the scan runs is copied to resource_history as it then
 * is, and the scan of resource_history, which comes after, finds it there.
 */
const TABLES = [
  { table: 'resource', key: ['id'], current: true },
  { table: 'resource_history', key: ['id', 'version_id'], current: false },
] as const;

type VersionTable = (typeof TABLES)[number];

interface VersionRow {
  id: string;
  version_id: number;
  content: string | null;
}

/** Scrubs every stored Subscription version, `batchSize` versions per transaction; returns how many it rewrote. */
export async function scrubWriteOnlyValues(db: Database, batchSize = BATCH): Promise<number> {
  let scrubbed = 0;
  for (const table of TABLES) {
    for (let after: SqlValue[] | undefined; ; ) {
      const page = await db.transaction((tx) => scrubPage(tx, table, after, batchSize));
      scrubbed += page.scrubbed;
      if (!page.next) break;
      after = page.next;
    }
  }
  return scrubbed;
}

/** One page of a table's Subscription versions after the key `after`; `next`: the key to go on from, if the page was full. */
async function scrubPage(sql: SqlExecutor, t: VersionTable, after: SqlValue[] | undefined, limit: number): Promise<{ scrubbed: number; next?: SqlValue[] }> {
  const key = t.key.join(', ');
  const rows = await sql.query<VersionRow>(
    `SELECT id, version_id, content FROM ${t.table} WHERE type = 'Subscription'${after ? ` AND (${key}) > (${t.key.map(() => '?').join(', ')})` : ''} ORDER BY ${key} LIMIT ${limit}`,
    after ?? [],
  );
  let scrubbed = 0;
  for (const row of rows) {
    const sub = row.content ? (JSON.parse(row.content) as Subscription) : undefined;
    if (!sub?.channel) continue;
    const { channel, taken } = hideWriteOnly(sub.channel);
    if (!Object.keys(taken).length) continue;
    // That version only: a write that superseded it meanwhile copied it to resource_history, scanned later.
    const changed = await sql.run(`UPDATE ${t.table} SET content = ? WHERE type = 'Subscription' AND id = ? AND version_id = ?`, [JSON.stringify({ ...sub, channel }), row.id, row.version_id]);
    if (changed && t.current) await keepForDelivery(sql, row.id, taken);
    scrubbed += changed;
  }
  const last = rows[rows.length - 1];
  return { scrubbed, next: rows.length === limit ? t.key.map((k) => last[k]) : undefined };
}

/**
 * The current version's values stay where the delivery worker reads them (notify_subscription, which
 * every release filled from the version it registered); a value the row already holds is kept.
 */
async function keepForDelivery(sql: SqlExecutor, id: string, taken: TakenValues): Promise<void> {
  const columns = Object.keys(taken) as WriteOnlyColumn[];
  await sql.run(`UPDATE notify_subscription SET ${columns.map((c) => `${c} = COALESCE(${c}, ?)`).join(', ')} WHERE id = ?`, [...columns.map((c) => taken[c] as string), id]);
}
