import { randomUUID } from 'node:crypto';
import { auditLogIfOn } from '../audit/audit-attachment.js';
import { notificationAuditRecord } from '../audit/audit-record.js';
import type { SqlExecutor } from '../store/database.js';
import type { Repository } from '../store/repository.js';
import { dispatchEvents, eventOf, EVENT_COLUMNS, type OutboxEvent } from './event-dispatcher.js';
import { participantById } from '../participants/participants.js';
import { rewritePatientIdentifiers, subscriberIdentifiers } from './forward-identifiers.js';
import { forwardOverMllp } from './mllp-forwarder.js';
import { OUTBOX_CHANNEL, type NotificationOutbox } from './notification-outbox.js';
import { notificationBundle, type NotifiedEvent } from './notification-bundle.js';
import { retryDelay, type NotifySettings } from './notify-settings.js';
import { postNotification } from './rest-hook.js';
import { SubscriberAccess } from './subscriber-access.js';
import { SubscriptionCache } from './subscription-cache.js';
import type { SubscriptionEntry } from './subscription-registry.js';
import { lockOrder, lockSubscriptions, numberAndWithholdOne, numberDeliveries, releaseLeases, settleDeliveries } from './delivery-ledger.js';
import type { AuthContext } from '../security/token-service.js';
import type { WebSocketHub } from './websocket-hub.js';

/** Events sent in one rest-hook or websocket notification. */
const BATCH = 20;
const CLAIM = 8;


interface PendingDelivery {
  /** Its place in the subscription's queue (internal; every matched event has one). */
  number: number;
  /** The number the subscriber sees, given when it is first sent (withheld events get none). */
  notified?: number;
  attempts: number;
  nextAttempt: number;
  event: OutboxEvent;
}

type Sendable = PendingDelivery & { resource?: NotifiedEvent['resource'] };

/** What a round sends for one subscription, and what it knows about it. */
interface Batch {
  sub: SubscriptionEntry;
  auth?: AuthContext;
  /** Due deliveries the policy let through, in order (one for a message channel). */
  batch: Sendable[];
  /** Queue places of due deliveries the policy withheld. */
  withheld: number[];
  /** Nothing was pending after this batch when it was read. */
  last: boolean;
  /** The subscription's count of numbered events once this batch is numbered. */
  total: number;
}

/** 'refused' is an MLLP AR (the receiver will never take it); an error is retried. */
type Outcome = 'delivered' | 'refused' | { error: string };

interface Logger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The delivery workers of one Tessera process (started by `tessera serve`): dispatch the outbox, then
 * deliver each due subscription's pending events in event-number order. A subscription is leased to one
 * worker at a time across processes (claimed with FOR UPDATE SKIP LOCKED on PostgreSQL; the lease
 * expires if its process dies, and the next worker delivers again from the first event not recorded as
 * delivered: at least once, numbered so receivers drop duplicates). A failed attempt holds the
 * subscription's later events back (order per endpoint) and is retried with exponential backoff; after
 * `maxAttempts` it is a dead letter and the next event goes.
 */
export class DeliveryWorker {
  readonly owner = randomUUID();
  readonly cache = new SubscriptionCache();
  private readonly access: SubscriberAccess;
  private timer?: NodeJS.Timeout;
  /** When the timer starts the next round. */
  private nextRoundAt = 0;
  /** When the last round started. */
  private lastRoundAt = 0;
  private running?: Promise<void>;
  private stopped = false;
  private lastPrune = 0;
  /** A commit signalled new outbox events while a round ran: dispatch them before the next claim, and go again. */
  private woken = false;
  /** A commit signalled new outbox events since the last dispatch: the next one need not look first. */
  private signalled = false;
  private unlisten?: () => Promise<void>;

  constructor(
    private readonly repo: Repository,
    private readonly settings: NotifySettings,
    private readonly baseUrl: () => string,
    private readonly hub: WebSocketHub | undefined,
    private readonly log: Logger,
    private readonly outbox?: NotificationOutbox,
  ) {
    this.access = new SubscriberAccess(repo, '');
  }

  /**
   * Runs rounds: at once when a commit wrote outbox events (a signal on OUTBOX_CHANNEL, from any process
   * on PostgreSQL), else every `pollMs`, which also catches what a missed signal, a retry falling due or
   * a heartbeat leaves.
   */
  async start(): Promise<void> {
    this.schedule(0);
    try {
      this.unlisten = await this.repo.db.listen(OUTBOX_CHANNEL, () => this.wake());
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'notifications: cannot listen for commits; delivery polls');
    }
    if (this.stopped) await this.unlisten?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.unlisten?.();
    await this.running;
  }

  /**
   * Work was committed: a round within `wakeDelayMs`, or, during one, another after it (and a dispatch
   * before its next claim). The short wait lets the commits of a busy intake share a round, and with
   * it the round's transactions (decision 0041); further wakes meanwhile do not put the round later.
   */
  wake(): void {
    if (this.stopped) return;
    this.signalled = true;
    if (this.running) this.woken = true;
    else this.schedule(this.wokenDelay());
  }

  /**
   * How long a woken worker waits: `wakeDelayMs`, and at least until `roundIntervalMs` after the last
   * round started, so that a busy intake's commits share rounds of that spacing (decision 0052).
   */
  private wokenDelay(): number {
    return Math.max(this.settings.wakeDelayMs, this.lastRoundAt + this.settings.roundIntervalMs - Date.now());
  }

  /** The next round within `ms`: a round already set to start sooner keeps its time. */
  private schedule(ms: number): void {
    const at = Date.now() + ms;
    if (this.timer && at >= this.nextRoundAt) return;
    clearTimeout(this.timer);
    this.nextRoundAt = at;
    this.timer = setTimeout(() => void this.round(), ms);
  }

  private async round(): Promise<void> {
    this.timer = undefined;
    if (this.stopped || this.running) return;
    this.woken = false;
    this.lastRoundAt = Date.now();
    this.running = this.tick().catch((err) => this.log.error({ err: { message: (err as Error).message } }, 'notifications: a delivery round failed; it is tried again'));
    await this.running;
    this.running = undefined;
    if (!this.stopped) this.schedule(this.woken ? this.wokenDelay() : this.settings.pollMs);
  }

  /** One round: dispatch what the outbox holds, deliver what is due, prune what is old. */
  async tick(): Promise<void> {
    await this.outbox?.refresh(this.repo.sql);
    // Deliveries just made: subscriptions are due, the claim need not look first.
    let look = !(await this.dispatch());
    for (;;) {
      // Events committed while subscriptions were being delivered for are matched before the next claim, not after the last.
      if (this.woken && (await this.dispatch())) look = false;
      const claimed = await this.claim(look);
      if (!claimed.length) break;
      const leftPending = await this.deliverClaimed(claimed);
      // Fewer than a claim's worth, all finished: nothing was left due (the poll finds retries falling due).
      // Commits since then are the next round's, `roundIntervalMs` after this one began (decision 0052).
      if (this.stopped || (claimed.length < CLAIM && !leftPending)) break;
      look = true;
    }
    if (Date.now() - this.lastPrune > 60_000) {
      this.lastPrune = Date.now();
      await pruneDelivered(this.repo, Date.now() - this.settings.retainHours * 3_600_000);
    }
  }

  /** Dispatches what the outbox holds; returns whether any subscription was given deliveries. */
  private async dispatch(): Promise<boolean> {
    this.woken = false;
    let signalled = this.signalled;
    this.signalled = false;
    let deliveries = 0;
    for (;;) {
      const done = await dispatchEvents(this.repo, this.cache, { signalled });
      deliveries += done.deliveries;
      // Fewer than its limit: it took every event committed before it (later commits signal again).
      if (!done.more || this.stopped) return deliveries > 0;
      signalled = true;
    }
  }

  /**
   * Leases up to CLAIM due subscriptions to this worker (one statement). A plain read first: most rounds
   * (each commit of outbox events wakes one) find nothing more to claim, and a read is cheaper than a
   * write transaction, which on SQLite also waits for the one writer with intake. What it misses (a
   * subscription made due just after it) is caught as before, by the commit's signal or the next poll.
   * Without `look` (this round's dispatch has just made subscriptions due), no read first.
   */
  private async claim(look = true): Promise<string[]> {
    const now = Date.now();
    const skipLocked = this.repo.db.dialect.name === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    // A websocket subscription is delivered by the process its socket is bound to; unbound, its events wait.
    const sockets = this.hub?.boundSubscriptions() ?? [];
    const websocket = sockets.length ? `channel_type <> 'websocket' OR id IN (${sockets.map(() => '?').join(', ')})` : "channel_type <> 'websocket'";
    const due = `SELECT id FROM notify_subscription WHERE active = 1 AND next_due <= ? AND lease_until < ? AND (${websocket}) ORDER BY next_due LIMIT`;
    if (look && !(await this.repo.sql.query(`${due} 1`, [now, now, ...sockets])).length) return [];
    return this.repo.transaction(async (tx) => {
      await tx.sql.commitWithoutWaitingForDisk(); // a lease lost in a database crash is claimed again
      const rows = await tx.sql.query<{ id: string }>(
        `UPDATE notify_subscription SET lease_owner = ?, lease_until = ? WHERE id IN (${due} ${CLAIM}${skipLocked}) RETURNING id`,
        [this.owner, now + this.settings.leaseMs, now, now, ...sockets],
      );
      return rows.map((r) => r.id);
    });
  }

  /**
   * Delivers what is due for the subscriptions this worker has just leased, in rounds: each reads every
   * one's next batch and asks the policy about it, numbers the batches in one transaction, sends them
   * concurrently (one at a time per subscription, so each keeps its order), and records the outcomes in
   * one transaction, giving back the leases of those with nothing more to send. A subscription whose
   * attempt failed waits for its retry; the others go on while their lease lasts.
   */
  private async deliverClaimed(ids: string[]): Promise<boolean> {
    const held = new Set(ids);
    const sentFor = new Set<string>();
    const subs: SubscriptionEntry[] = [];
    try {
      for (const id of ids) {
        const sub = await this.subscription(id);
        if (sub) subs.push(sub);
      }
      const leaseEnd = Date.now() + this.settings.leaseMs - this.settings.timeoutMs - 1000;
      let going = subs;
      while (going.length && Date.now() < leaseEnd && !this.stopped) {
        const batches = (await Promise.all(going.map((sub) => this.nextBatch(sub)))).filter((b): b is Batch => !!b);
        if (!batches.length) break;
        // Waits for the disk: the numbers go out with the notifications and must never be given again.
        await this.prepare(batches);
        const sending = batches.filter((b) => b.batch.length);
        const outcomes = await Promise.all(sending.map((b) => this.send(b.sub, b.batch, b.total)));
        const released = await this.repo.transaction((tx) => this.record(tx.sql, sending, outcomes));
        released.forEach((id) => held.delete(id));
        sending.forEach((b, i) => {
          if (typeof outcomes[i] === 'string') sentFor.add(b.sub.id);
        });
        await Promise.all(sending.map((b, i) => (typeof outcomes[i] === 'string' ? this.audit(b, outcomes[i] as 'delivered' | 'refused') : undefined)));
        // Withheld only: the next batch. Sent, with more pending: the next batch. Failed or all sent: done.
        going = batches
          .filter((b) => {
            const i = sending.indexOf(b);
            return i < 0 || (typeof outcomes[i] === 'string' && held.has(b.sub.id));
          })
          .map((b) => b.sub);
      }
      for (const sub of subs) if (!sentFor.has(sub.id) && held.has(sub.id) && sub.heartbeatSeconds > 0 && sub.channelType !== 'message') await this.heartbeat(sub);
    } catch (err) {
      this.log.error({ subscriptions: ids, err: { message: (err as Error).message } }, 'notifications: delivering for subscriptions failed');
    } finally {
      if (held.size) {
        await this.repo.transaction(async (tx) => {
          await tx.sql.commitWithoutWaitingForDisk();
          await lockSubscriptions(tx.sql, this.repo.db.dialect, [...held]);
          await releaseLeases(tx.sql, [...held], this.owner);
        });
      }
    }
    // Leases given back with work left (a failed attempt's retry, a lease that ran out): possibly due again.
    return held.size > 0;
  }

  /**
   * A subscription's next batch: its due pending deliveries in order, each decided by the policy as a
   * read by the participant's client would be decided now; undefined when nothing is due.
   */
  private async nextBatch(sub: SubscriptionEntry): Promise<Batch | undefined> {
    const { due, more, notifiedCount } = await this.duePending(sub.id);
    if (!due.length) return undefined;
    const auth = sub.participantId ? await this.access.authOf(sub.participantId) : undefined;
    const allowed: Sendable[] = [];
    const withheld: number[] = [];
    for (const d of due) {
      const resource = auth ? await this.access.read(auth, d.event.focusType, d.event.focusId, d.event.facts.version) : undefined;
      if (resource) allowed.push({ ...d, resource });
      else withheld.push(d.number);
    }
    const batch = sub.channelType === 'message' ? allowed.slice(0, 1) : allowed;
    // Nothing more was pending when this batch was read: its lease goes back with the batch's outcome.
    return { sub, auth, batch, withheld, last: !more && batch.length === allowed.length, total: notifiedCount };
  }

  /**
   * Before sending (one transaction for the round; on PostgreSQL one statement when it writes for one
   * subscription): settles what the policy withheld, and gives the
   * events about to be sent their subscriber-visible numbers (events-since-subscription-start), in queue
   * order. A retry sends the same numbers, so receivers can drop repeats; only events the policy let
   * through are numbered, so a withheld event leaves no gap that would tell the subscriber something
   * happened to its patient. Numbers already given are kept.
   */
  private async prepare(batches: Batch[]): Promise<void> {
    const fresh = batches.map((b) => ({ b, fresh: b.batch.filter((d) => d.notified === undefined) }));
    const writing = fresh.filter(({ b, fresh }) => b.withheld.length || fresh.length);
    if (!writing.length) return;
    let given: Map<string, { numbers: number[]; total: number }>;
    if (writing.length === 1 && this.repo.db.dialect.name === 'postgres') {
      // One subscription: one statement, its own transaction (on PostgreSQL each statement is a round trip).
      const [{ b, fresh: todo }] = writing;
      given = new Map([[b.sub.id, await numberAndWithholdOne(this.repo.sql, b.sub.id, todo.map((d) => d.number), b.withheld, Date.now())]]);
    } else {
      given = await this.repo.transaction(async (tx) => {
        if (writing.length > 1) await lockSubscriptions(tx.sql, this.repo.db.dialect, writing.map(({ b }) => b.sub.id));
        await settleDeliveries(tx.sql, batches.map((b) => ({ subscriptionId: b.sub.id, numbers: b.withheld })), 'withheld', Date.now());
        return numberDeliveries(tx.sql, fresh.map(({ b, fresh }) => ({ subscriptionId: b.sub.id, numbers: fresh.map((d) => d.number) })));
      });
    }
    for (const { b, fresh: todo } of fresh) {
      const numbered = given.get(b.sub.id);
      if (!numbered || !todo.length) continue;
      todo.forEach((d, i) => (d.notified = numbered.numbers[i]));
      b.total = numbered.total;
    }
  }

  /**
   * After sending (one transaction for the round): each batch's outcome, and the lease back for each
   * subscription whose last batch went. The subscriptions' rows are locked first (see releaseLeases).
   * Returns the subscriptions released.
   */
  private async record(sql: SqlExecutor, sent: Batch[], outcomes: Outcome[]): Promise<string[]> {
    if (!sent.length) return [];
    // Lost in a database crash, the outcomes are redone: the same events sent again under the same
    // numbers (prepare waited for the disk), which receivers drop as duplicates.
    await sql.commitWithoutWaitingForDisk();
    const now = Date.now();
    const places = (status: Outcome) => sent.filter((_, i) => outcomes[i] === status).map((b) => ({ subscriptionId: b.sub.id, numbers: b.batch.map((d) => d.number) }));
    const delivered = places('delivered');
    // One subscription, delivered: the update of its row below is the lock.
    if (sent.length > 1 || !delivered.length) await lockSubscriptions(sql, this.repo.db.dialect, sent.map((b) => b.sub.id));
    if (delivered.length) await sql.run(`UPDATE notify_subscription SET last_sent = ?, last_error = NULL WHERE id IN (${delivered.map(() => '?').join(', ')})`, [now, ...delivered.map((p) => p.subscriptionId)]);
    await settleDeliveries(sql, delivered, 'delivered', now);
    await settleDeliveries(sql, places('refused'), 'dead', now);
    for (const [i, b] of sent.entries()) {
      const outcome = outcomes[i];
      if (typeof outcome !== 'string') await this.failed(sql, b.sub.id, b.batch, outcome.error);
    }
    const released = sent.filter((b, i) => b.last && typeof outcomes[i] === 'string').map((b) => b.sub.id);
    await releaseLeases(sql, released, this.owner);
    return released;
  }

  /** Each notification sent (or refused) is audited as a disclosure to the participant. */
  private async audit(b: Batch, outcome: 'delivered' | 'refused'): Promise<void> {
    await auditLogIfOn(this.repo)?.record(
      notificationAuditRecord({
        subscriptionId: b.sub.id,
        channel: b.sub.channelType,
        participantId: b.sub.participantId as string,
        clientId: b.auth?.clientId as string,
        purposeOfUse: b.auth?.purposeOfUse,
        status: outcome,
        resources: b.batch.map((d) => ({ reference: `${d.event.focusType}/${d.event.focusId}`, patientId: d.event.patientId })),
      }),
    );
  }

  /** Sends a batch; 'refused' is an MLLP AR (the receiver will never take it), an error is retried. */
  private async send(sub: SubscriptionEntry, batch: Sendable[], total: number): Promise<Outcome> {
    try {
      if (sub.channelType === 'message') {
        const raw = await this.messageText(batch[0].event);
        if (raw === undefined) return 'delivered'; // nothing to forward: the event came from no HL7 v2 message
        const ack = await forwardOverMllp(sub.endpoint as string, await this.forSubscriber(sub, batch[0].event, raw), this.settings.timeoutMs);
        if (ack.code === 'AA' || ack.code === 'CA') return 'delivered';
        if (ack.code === 'AR' || ack.code === 'CR') return 'refused';
        return { error: `the receiver answered ${ack.code || 'no MSA-1'}${ack.text ? `: ${ack.text}` : ''}` };
      }
      const events: NotifiedEvent[] = batch.map((d) => ({ number: d.notified as number, at: d.event.at, focusType: d.event.focusType, focusId: d.event.focusId, resource: d.resource }));
      const body = JSON.stringify(notificationBundle(sub, 'event-notification', total, events, `${this.baseUrl()}/fhir`));
      if (sub.channelType === 'websocket') await this.requireHub().send(sub.id, body);
      else await postNotification(sub.endpoint as string, body, { headers: sub.headers, secret: sub.secret, timeoutMs: this.settings.timeoutMs });
      return 'delivered';
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  private async heartbeat(sub: SubscriptionEntry): Promise<void> {
    const [row] = await this.repo.sql.query<{ last_sent: number }>('SELECT last_sent FROM notify_subscription WHERE id = ?', [sub.id]);
    if (Number(row?.last_sent ?? 0) + sub.heartbeatSeconds * 1000 > Date.now()) return;
    const body = JSON.stringify(notificationBundle(sub, 'heartbeat', await this.eventCount(sub.id), [], `${this.baseUrl()}/fhir`));
    try {
      if (sub.channelType === 'websocket') await this.requireHub().send(sub.id, body);
      else await postNotification(sub.endpoint as string, body, { headers: sub.headers, secret: sub.secret, timeoutMs: this.settings.timeoutMs });
      await this.repo.sql.run('UPDATE notify_subscription SET last_sent = ? WHERE id = ?', [Date.now(), sub.id]);
    } catch (err) {
      await this.repo.sql.run('UPDATE notify_subscription SET last_error = ?, last_sent = ? WHERE id = ?', [`heartbeat: ${(err as Error).message}`, Date.now(), sub.id]);
    }
  }

  /** The handshake a websocket gets when it binds. */
  async handshake(subscriptionId: string): Promise<string | undefined> {
    const sub = await this.subscription(subscriptionId);
    return sub ? JSON.stringify(notificationBundle(sub, 'handshake', await this.eventCount(sub.id), [], `${this.baseUrl()}/fhir`)) : undefined;
  }

  /** A subscription from the cache, re-read when it is not there yet (written by a transaction that committed since). */
  private async subscription(id: string): Promise<SubscriptionEntry | undefined> {
    await this.cache.refresh(this.repo.sql);
    if (!this.cache.get(id)) await this.cache.refresh(this.repo.sql, true);
    return this.cache.get(id);
  }

  private requireHub(): WebSocketHub {
    if (!this.hub) throw new Error('this process serves no websockets');
    return this.hub;
  }

  /**
   * The pending deliveries of a subscription in order, up to the first that is not due yet; whether more
   * were pending than fit in one batch; and the subscription's count of numbered events.
   */
  private async duePending(id: string): Promise<{ due: PendingDelivery[]; more: boolean; notifiedCount: number }> {
    const rows = await this.repo.sql.query<Record<string, unknown>>(
      `SELECT d.event_number, d.notified_number, d.attempts, d.next_attempt, s.notified_count, ${EVENT_COLUMNS.split(', ').map((c) => `e.${c}`).join(', ')}
       FROM notify_delivery d JOIN notify_event e ON e.seq = d.event_seq JOIN notify_subscription s ON s.id = d.subscription_id
       WHERE d.subscription_id = ? AND d.status = 'pending' ORDER BY d.event_number LIMIT ${BATCH + 1}`,
      [id],
    );
    const now = Date.now();
    const due: PendingDelivery[] = [];
    for (const r of rows.slice(0, BATCH)) {
      if (Number(r.next_attempt) > now) break;
      due.push({ number: Number(r.event_number), notified: r.notified_number === null || r.notified_number === undefined ? undefined : Number(r.notified_number), attempts: Number(r.attempts), nextAttempt: Number(r.next_attempt), event: eventOf(r as never) });
    }
    return { due, more: rows.length > due.length, notifiedCount: Number(rows[0]?.notified_count ?? 0) };
  }

  /** The message as the subscriber should get it: the patient named by the identifiers its participant knows them by. */
  private async forSubscriber(sub: SubscriptionEntry, event: OutboxEvent, raw: string): Promise<string> {
    const participant = sub.participantId ? await participantById(this.repo, sub.participantId) : undefined;
    if (!participant || !event.patientId) return raw;
    return rewritePatientIdentifiers(raw, await subscriberIdentifiers(this.repo, event.patientId, participant), this.settings.forwardSenderIds);
  }

  private async messageText(event: OutboxEvent): Promise<string | undefined> {
    if (!event.facts.message) return undefined;
    const rows = await this.repo.sql.query<{ raw: string; format: string }>('SELECT raw, format FROM message WHERE id = ?', [event.facts.message]);
    return rows[0]?.format === 'hl7v2' ? rows[0].raw : undefined;
  }

  /** Events sent to the subscriber so far (events-since-subscription-start). */
  private async eventCount(id: string): Promise<number> {
    const [row] = await this.repo.sql.query<{ notified_count: number }>('SELECT notified_count FROM notify_subscription WHERE id = ?', [id]);
    return Number(row?.notified_count ?? 0);
  }

  /** A failed attempt: retried after a backoff, or, after the last attempt, a dead letter (the next event goes). */
  private async failed(sql: SqlExecutor, id: string, batch: PendingDelivery[], error: string): Promise<void> {
    const attempts = batch[0].attempts + 1;
    const dead = attempts >= this.settings.maxAttempts;
    const numbers = batch.map((d) => d.number);
    await sql.run(
      `UPDATE notify_delivery SET attempts = ?, next_attempt = ?, last_error = ?, status = ? WHERE subscription_id = ? AND event_number IN (${numbers.map(() => '?').join(', ')})`,
      [attempts, Date.now() + retryDelay(this.settings, attempts), error, dead ? 'dead' : 'pending', id, ...numbers],
    );
    await sql.run('UPDATE notify_subscription SET last_error = ? WHERE id = ?', [error, id]);
    if (dead) this.log.warn({ subscription: id, events: numbers.length }, 'notifications: deliveries moved to the dead letters after the last attempt');
  }
}

/** Drops deliveries settled before `before` and the events no delivery needs any more. */
export async function pruneDelivered(repo: Repository, before: number): Promise<void> {
  await repo.transaction(async (tx) => {
    await tx.sql.run("DELETE FROM notify_delivery WHERE status IN ('delivered', 'withheld') AND delivered_at < ?", [before]);
    await tx.sql.run('DELETE FROM notify_event WHERE dispatched = 1 AND at < ? AND NOT EXISTS (SELECT 1 FROM notify_delivery d WHERE d.event_seq = notify_event.seq)', [before]);
  });
}

/** Subscriptions whose rows one statement of `redrive` names (a bound on its parameters). */
const REDRIVE_CHUNK = 1000;

/**
 * Puts a subscription's dead letters back in line, or every subscription's (`tessera subscriptions
 * redrive`); returns how many. Rows are taken in the ledger's order (delivery-ledger.ts): the
 * subscriptions' rows first, in lockOrder, then their deliveries. Updated in whatever order a scan met
 * them, a redrive of several could hold one row a delivery round wants while waiting for another the
 * round holds, and PostgreSQL would end one of the two as a deadlock.
 */
export async function redrive(repo: Repository, subscriptionId: string | undefined): Promise<number> {
  return repo.transaction(async (tx) => {
    const ids = subscriptionId
      ? [subscriptionId]
      : lockOrder((await tx.sql.query<{ subscription_id: string }>("SELECT DISTINCT subscription_id FROM notify_delivery WHERE status = 'dead'")).map((r) => r.subscription_id));
    let count = 0;
    for (let i = 0; i < ids.length; i += REDRIVE_CHUNK) await lockSubscriptions(tx.sql, repo.db.dialect, ids.slice(i, i + REDRIVE_CHUNK));
    for (let i = 0; i < ids.length; i += REDRIVE_CHUNK) {
      const chunk = ids.slice(i, i + REDRIVE_CHUNK);
      const marks = chunk.map(() => '?').join(', ');
      // Dead letters of a subscription not locked above (one that died since the read) wait for the next redrive.
      count += await tx.sql.run(`UPDATE notify_delivery SET status = 'pending', attempts = 0, next_attempt = 0 WHERE status = 'dead' AND subscription_id IN (${marks})`, chunk);
      await tx.sql.run(`UPDATE notify_subscription SET next_due = 0 WHERE id IN (${marks})`, chunk);
    }
    await tx.sql.notify(OUTBOX_CHANNEL); // a running server delivers them now
    return count;
  });
}
