import type { Dialect, SqlExecutor, SqlValue } from '../store/database.js';
import { NEVER } from './subscription-registry.js';

/**
 * The statements that record a delivery round's progress for several leased subscriptions at once, so
 * that a round pays one transaction to number what it is about to send and one to record what happened,
 * whatever the number of subscriptions it holds (not two per subscription). Each runs inside the caller's
 * transaction; every statement names the subscription with each delivery, so one subscription's queue
 * is never touched by another's work.
 */

/** A subscription's next due time after a round: its first pending attempt, or its next heartbeat (SQL on its row). */
const NEXT_DUE = `(SELECT MIN(next_attempt) FROM notify_delivery WHERE subscription_id = notify_subscription.id AND status = 'pending')`;
const NEXT_HEARTBEAT = `CASE WHEN heartbeat_s > 0 AND channel_type <> 'message' THEN last_sent + heartbeat_s * 1000 ELSE ${NEVER} END`;

/** Deliveries of one subscription, by their place in its queue. */
export interface QueuePlaces {
  subscriptionId: string;
  numbers: number[];
}

const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** `(subscription_id = ? AND event_number IN (...)) OR ...` and its parameters. */
function placesWhere(places: QueuePlaces[]): { where: string; params: SqlValue[] } {
  const some = places.filter((p) => p.numbers.length);
  return {
    where: some.map((p) => `(subscription_id = ? AND event_number IN (${marks(p.numbers.length)}))`).join(' OR '),
    params: some.flatMap((p) => [p.subscriptionId, ...p.numbers]),
  };
}

/** Subscription ids in the order their rows are locked in (code-unit order, as PostgreSQL's `COLLATE "C"`). */
export function lockOrder(ids: Iterable<string>): string[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Locks the subscriptions' rows in lockOrder: the dispatcher locks the rows it adds deliveries to in the
 * same order, so two transactions that each lock several never wait for each other in a cycle. On
 * SQLite (one writer at a time) there is nothing to lock.
 */
export async function lockSubscriptions(sql: SqlExecutor, dialect: Dialect, ids: string[]): Promise<void> {
  if (!dialect.forUpdate || !ids.length) return;
  await sql.query(`SELECT id FROM notify_subscription WHERE id IN (${marks(ids.length)}) ORDER BY id COLLATE "C"${dialect.forUpdate}`, lockOrder(ids));
}

/** Sets the status of deliveries (delivered, withheld, dead) and when they were settled. */
export async function settleDeliveries(sql: SqlExecutor, places: QueuePlaces[], status: 'delivered' | 'withheld' | 'dead', at: number): Promise<void> {
  const { where, params } = placesWhere(places);
  if (where) await sql.run(`UPDATE notify_delivery SET status = ?, delivered_at = ? WHERE ${where}`, [status, at, ...params]);
}

/**
 * Gives each subscription's fresh deliveries (`places`, in queue order) the next numbers its subscriber
 * sees: two statements for all of them. Returns, per subscription, the numbers given, in the same order,
 * and its count after them (events-since-subscription-start).
 */
export async function numberDeliveries(sql: SqlExecutor, places: QueuePlaces[]): Promise<Map<string, { numbers: number[]; total: number }>> {
  const some = places.filter((p) => p.numbers.length);
  const given = new Map<string, { numbers: number[]; total: number }>();
  if (!some.length) return given;
  const rows = await sql.query<{ id: string; notified_count: number }>(
    `UPDATE notify_subscription SET notified_count = notified_count + CASE id ${some.map(() => 'WHEN ? THEN CAST(? AS BIGINT)').join(' ')} END
     WHERE id IN (${marks(some.length)}) RETURNING id, notified_count`,
    [...some.flatMap((p) => [p.subscriptionId, p.numbers.length]), ...some.map((p) => p.subscriptionId)],
  );
  const totals = new Map(rows.map((r) => [r.id, Number(r.notified_count)]));
  const whens: string[] = [];
  const values: SqlValue[] = [];
  for (const p of some) {
    const total = totals.get(p.subscriptionId) ?? 0;
    const numbers = p.numbers.map((_, i) => total - p.numbers.length + 1 + i);
    given.set(p.subscriptionId, { numbers, total });
    p.numbers.forEach((place, i) => {
      whens.push('WHEN subscription_id = ? AND event_number = ? THEN CAST(? AS BIGINT)');
      values.push(p.subscriptionId, place, numbers[i]);
    });
  }
  const { where, params } = placesWhere(some);
  await sql.run(`UPDATE notify_delivery SET notified_number = CASE ${whens.join(' ')} END WHERE ${where}`, [...values, ...params]);
  return given;
}

/**
 * PostgreSQL, one subscription: what numberDeliveries and settleDeliveries(withheld) do for it, in one
 * statement, and so in one round trip when run outside a transaction (it is then its own, and waits for
 * the disk). The update of the subscription's row is the only row lock it needs first (decision 0041);
 * its deliveries are updated after it, as every other writer of them does. Returns the numbers given to
 * `fresh` (in order) and the count after them.
 */
export async function numberAndWithholdOne(sql: SqlExecutor, subscriptionId: string, fresh: number[], withheld: number[], at: number): Promise<{ numbers: number[]; total: number }> {
  const [row] = await sql.query<{ notified_count: number }>(
    `WITH counted AS (UPDATE notify_subscription SET notified_count = notified_count + ? WHERE id = ? RETURNING notified_count),
       withheld AS (UPDATE notify_delivery SET status = 'withheld', delivered_at = ?
         WHERE subscription_id = ? AND event_number IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(? AS json)))),
       numbered AS (UPDATE notify_delivery d SET notified_number = c.notified_count - ? + f.i
         FROM counted c, json_array_elements_text(CAST(? AS json)) WITH ORDINALITY AS f(place, i)
         WHERE d.subscription_id = ? AND d.event_number = CAST(f.place AS BIGINT))
     SELECT notified_count FROM counted`,
    [fresh.length, subscriptionId, at, subscriptionId, JSON.stringify(withheld), fresh.length, JSON.stringify(fresh), subscriptionId],
  );
  const total = Number(row?.notified_count ?? 0);
  return { numbers: fresh.map((_, i) => total - fresh.length + 1 + i), total };
}

/**
 * Gives leases back, each subscription due again at its next pending attempt (or heartbeat). The rows
 * must be locked already in this transaction (lockSubscriptions, or an update of them), so that a
 * dispatcher adding deliveries has committed before the next pending attempt is read (a statement of its
 * own: PostgreSQL would evaluate it on a snapshot taken before the wait).
 */
export async function releaseLeases(sql: SqlExecutor, ids: string[], owner: string): Promise<void> {
  if (!ids.length) return;
  await sql.run(
    `UPDATE notify_subscription SET next_due = CASE WHEN COALESCE(${NEXT_DUE}, ${NEVER}) < ${NEXT_HEARTBEAT} THEN COALESCE(${NEXT_DUE}, ${NEVER}) ELSE ${NEXT_HEARTBEAT} END,
       lease_owner = NULL, lease_until = 0 WHERE id IN (${marks(ids.length)}) AND lease_owner = ?`,
    [...ids, owner],
  );
}
