import type { Subscription } from '@medplum/fhirtypes';
import { withoutStatementTimeout, type Database, type Dialect, type SqlExecutor, type SqlValue } from '../store/database.js';
import { hideWriteOnly, type TakenValues, type WriteOnlyColumn } from './write-only-channel.js';
import { withWriteOnlyHidden, type LoggedRequest } from './write-only-in-requests.js';

/**
 * Hides the write-only channel values (signing secret, headers: write-only-channel.ts) in every stored
 * Subscription version: versions written before they became write-only (decision 0037), or by the bulk
 * path before it took the ordinary one, carry them in their JSON, and a read of the version or the
 * history would show them; and in the message log's copies of participants' FHIR writes, which kept
 * them raw. A schema migration runs it on start (schema.ts); it is idempotent (a hidden value is the
 * placeholder, which is left as it is).
 */

/** Rows read and rewritten per transaction: a large store is not rewritten in one long transaction. */
const BATCH = 200;

/** Where write-only values were stored, and how to hide them in one row's text. */
interface Source {
  table: string;
  /** The columns a scan pages by (an index's order), which name one row. */
  key: readonly string[];
  column: 'content' | 'raw';
  /** Which rows may hold Subscriptions. */
  where: (d: Dialect) => string;
  params: SqlValue[];
  /** The row's text with the values hidden, and the values taken; undefined when there are none. */
  hide(text: string): { text: string; taken: TakenValues } | undefined;
  /** A current version: its values are the ones in use. */
  current?: boolean;
}

function hideInVersion(text: string): { text: string; taken: TakenValues } | undefined {
  const sub = JSON.parse(text) as Subscription;
  if (!sub.channel) return undefined;
  const { channel, taken } = hideWriteOnly(sub.channel);
  return Object.keys(taken).length ? { text: JSON.stringify({ ...sub, channel }), taken } : undefined;
}

/** A participant's FHIR write as the message log kept it before it hid the values (fhir-attribution.ts). */
function hideInLoggedRequest(text: string): { text: string; taken: TakenValues } | undefined {
  const request = JSON.parse(text) as LoggedRequest;
  const out = JSON.stringify({ ...request, body: withWriteOnlyHidden(request) });
  return out === text ? undefined : { text: out, taken: {} };
}

const SUBSCRIPTIONS = { where: () => 'type = ?', params: ['Subscription'] };

/**
 * The current versions go first: a version superseded while the scan runs is copied to resource_history
 * as it then is, and the scan of resource_history, which comes after, finds it there.
 */
const SOURCES: Source[] = [
  { table: 'resource', key: ['id'], column: 'content', ...SUBSCRIPTIONS, hide: hideInVersion, current: true },
  { table: 'resource_history', key: ['id', 'version_id'], column: 'content', ...SUBSCRIPTIONS, hide: hideInVersion },
  // A Subscription's own write (POST^Subscription, PUT^..., PATCH^...) or a Bundle that may hold one: the type first, the text after.
  {
    table: 'message',
    key: ['id'],
    column: 'raw',
    where: (d) => `format = 'fhir' AND (message_type LIKE ? OR message_type LIKE ?) AND ${d.contains('raw')}`,
    params: ['%^Subscription', 'Bundle^%', 'Subscription'],
    hide: hideInLoggedRequest,
  },
];

/** Scrubs every stored Subscription version and logged request, `batchSize` rows per transaction; returns how many it rewrote. */
export async function scrubWriteOnlyValues(db: Database, batchSize = BATCH): Promise<number> {
  let scrubbed = 0;
  for (const source of SOURCES) {
    for (let after: SqlValue[] | undefined; ; ) {
      const page = await db.transaction(async (tx) => {
        // A page of the message log may be far into it: the scan for its next rows reads what lies between.
        await withoutStatementTimeout(tx, db.dialect);
        return scrubPage(tx, db.dialect, source, after, batchSize);
      });
      scrubbed += page.scrubbed;
      if (!page.next) break;
      after = page.next;
    }
  }
  return scrubbed;
}

/** One page of a source's rows after the key `after`; `next`: the key to go on from, if the page was full. */
async function scrubPage(sql: SqlExecutor, dialect: Dialect, s: Source, after: SqlValue[] | undefined, limit: number): Promise<{ scrubbed: number; next?: SqlValue[] }> {
  const key = s.key.join(', ');
  const rows = await sql.query<Record<string, SqlValue>>(
    `SELECT ${key}, ${s.column} AS text FROM ${s.table} WHERE ${s.where(dialect)}${after ? ` AND (${key}) > (${s.key.map(() => '?').join(', ')})` : ''} ORDER BY ${key} LIMIT ${limit}`,
    [...s.params, ...(after ?? [])],
  );
  let scrubbed = 0;
  for (const row of rows) {
    const hidden = typeof row.text === 'string' ? hideOrLeave(s, row.text) : undefined;
    if (!hidden) continue;
    // That row as read, and no other: a write that superseded a version meanwhile copied it to resource_history, scanned later.
    // The source's filter too: it leads the key's index (resource's is (type, id)).
    const changed = await sql.run(`UPDATE ${s.table} SET ${s.column} = ? WHERE ${s.where(dialect)} AND ${s.key.map((k) => `${k} = ?`).join(' AND ')} AND ${s.column} = ?`, [
      hidden.text,
      ...s.params,
      ...s.key.map((k) => row[k]),
      row.text,
    ]);
    if (changed && s.current) await keepForDelivery(sql, String(row.id), hidden.taken);
    scrubbed += changed;
  }
  const last = rows[rows.length - 1];
  return { scrubbed, next: rows.length === limit ? s.key.map((k) => last[k]) : undefined };
}

/** A row whose text is not the JSON it should be holds no Subscription: it is left as it is, and the start goes on. */
function hideOrLeave(s: Source, text: string): ReturnType<Source['hide']> {
  try {
    return s.hide(text);
  } catch {
    return undefined;
  }
}

/**
 * The current version's values stay where the delivery worker reads them (notify_subscription, which
 * every release filled from the version it registered); a value the row already holds is kept.
 */
async function keepForDelivery(sql: SqlExecutor, id: string, taken: TakenValues): Promise<void> {
  const columns = Object.keys(taken) as WriteOnlyColumn[];
  await sql.run(`UPDATE notify_subscription SET ${columns.map((c) => `${c} = COALESCE(${c}, ?)`).join(', ')} WHERE id = ?`, [...columns.map((c) => taken[c] as string), id]);
}
