import { createHash } from 'node:crypto';
import type { SqlExecutor, SqlValue } from '../store/database.js';

/** The digest that tells a retransmission (same text) from another message reusing a control id; line endings do not count. */
export function messageDigest(raw: string): string {
  return createHash('sha256').update(raw.trim().replace(/\r\n|\r|\n/g, '\r')).digest('hex');
}

/**
 * received: stored, not yet processed (a crash here is recovered on the next start); processed: its
 * resources are stored; failed: parsing or mapping failed (the error queue; replayable); duplicate: the
 * sender's control id was processed before, so it was acknowledged and not applied again; ignored:
 * acknowledged (AR) but nothing to store or fix, such as an ACK sent to the exchange (not in the error queue).
 */
export type MessageStatus = 'received' | 'processed' | 'failed' | 'duplicate' | 'ignored';
export const MESSAGE_STATUSES: readonly MessageStatus[] = ['received', 'processed', 'failed', 'duplicate', 'ignored'];

export interface LoggedMessage {
  id: string;
  participantId?: string;
  channel: string;
  format: string;
  messageType?: string;
  controlId?: string;
  /** SHA-256 of the message text: a retransmission has the same control id and the same text. */
  digest?: string;
  status: MessageStatus;
  receivedAt: number;
  finishedAt?: number;
  attempts: number;
  raw: string;
  error?: string;
  warnings: string[];
  /** References to the resource versions the message wrote ("Patient/1/_history/2"). */
  resources: string[];
  /** The Patient the message is about ("Patient/1"). */
  patient?: string;
}

interface MessageRow {
  id: string;
  participant_id: string | null;
  channel: string;
  format: string;
  message_type: string | null;
  control_id: string | null;
  digest: string | null;
  status: MessageStatus;
  received_at: number;
  finished_at: number | null;
  attempts: number;
  raw: string;
  error: string | null;
  warnings: string | null;
  resources: string | null;
  patient: string | null;
}

const COLUMNS = 'id, participant_id, channel, format, message_type, control_id, digest, status, received_at, finished_at, attempts, raw, error, warnings, resources, patient';

function toMessage(r: MessageRow): LoggedMessage {
  return {
    id: r.id,
    participantId: r.participant_id ?? undefined,
    channel: r.channel,
    format: r.format,
    messageType: r.message_type ?? undefined,
    controlId: r.control_id ?? undefined,
    digest: r.digest ?? undefined,
    status: r.status,
    receivedAt: Number(r.received_at),
    finishedAt: r.finished_at === null ? undefined : Number(r.finished_at),
    attempts: Number(r.attempts),
    raw: r.raw,
    error: r.error ?? undefined,
    warnings: r.warnings ? (JSON.parse(r.warnings) as string[]) : [],
    resources: r.resources ? (JSON.parse(r.resources) as string[]) : [],
    patient: r.patient ?? undefined,
  };
}

export interface MessageFilter {
  status?: MessageStatus;
  participantId?: string;
  /** Message type prefix: "ADT" or "ADT^A01". */
  type?: string;
  patient?: string;
  since?: number;
  until?: number;
  limit?: number;
  /** Paging: messages received before this one (id order is receipt order). */
  before?: string;
}

/** One sender's messages over a window (GET /participants/traffic). */
export interface SenderTraffic {
  participantId?: string;
  messages: number;
  failed: number;
  /** "mllp hl7v2", "rest ccda"...: what the sender used in the window. */
  channels: string[];
  /** Its latest message ever, ms. */
  lastReceivedAt?: number;
}

/**
 * The format and type of the HL7 v2 messages this process logged lately, by id. An HL7 v2 message's are
 * written once, with it (a C-CDA's type is set again later, with its document key: those are not kept
 * here), so what the notification outbox asks of each write such a message makes needs no read
 * (decision 0052). Bounded; a message not here is read.
 */
const recentKinds = new Map<string, { format: string; messageType: string | null }>();
const RECENT_KINDS = 1000;

/** The message log: every inbound message, raw, with what became of it (docs/interfaces.md). */
export class MessageLog {
  constructor(private readonly sql: SqlExecutor) {}

  async received(m: Pick<LoggedMessage, 'id' | 'participantId' | 'channel' | 'format' | 'messageType' | 'controlId' | 'raw' | 'receivedAt'>): Promise<void> {
    await this.sql.run(`INSERT INTO message (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'received', ?, NULL, 0, ?, NULL, NULL, NULL, NULL)`, [
      m.id,
      m.participantId ?? null,
      m.channel,
      m.format,
      m.messageType ?? null,
      m.controlId ?? null,
      messageDigest(m.raw),
      m.receivedAt,
      m.raw,
    ]);
    if (m.format !== 'hl7v2') return;
    if (recentKinds.size >= RECENT_KINDS) recentKinds.delete(recentKinds.keys().next().value as string);
    recentKinds.set(m.id, { format: m.format, messageType: m.messageType ?? null });
  }

  /** A logged message's format and type (HL7 v2: `ADT^A01`...), without a read when this process logged it lately. */
  async kindOf(id: string): Promise<{ format: string; messageType: string | null } | undefined> {
    const recent = recentKinds.get(id);
    if (recent) return recent;
    const [row] = await this.sql.query<{ message_type: string | null; format: string }>('SELECT message_type, format FROM message WHERE id = ?', [id]);
    return row && { format: row.format, messageType: row.message_type };
  }

  async finish(id: string, status: Exclude<MessageStatus, 'received'>, outcome: { error?: string; warnings?: string[]; resources?: string[]; patient?: string }): Promise<void> {
    await this.sql.run('UPDATE message SET status = ?, finished_at = ?, attempts = attempts + 1, error = ?, warnings = ?, resources = ?, patient = ? WHERE id = ?', [
      status,
      Date.now(),
      outcome.error ?? null,
      outcome.warnings?.length ? JSON.stringify(outcome.warnings) : null,
      outcome.resources?.length ? JSON.stringify(outcome.resources) : null,
      outcome.patient ?? null,
      id,
    ]);
  }

  /**
   * What this sender's earlier applied messages with the same control id (HL7 MSH-10, a document's id)
   * say about `raw`: `original`, the one with the same text (this is a retransmission, not to be applied
   * again), else `reusedBy`, the first with other content (the sender reused the id: this message is
   * applied, with a warning).
   */
  async earlierUse(participantId: string, controlId: string, exceptId: string, raw: string): Promise<{ original?: LoggedMessage; reusedBy?: LoggedMessage }> {
    const rows = await this.sql.query<MessageRow>(
      `SELECT ${COLUMNS} FROM message WHERE participant_id = ? AND control_id = ? AND status = 'processed' AND id <> ? ORDER BY id LIMIT 100`,
      [participantId, controlId, exceptId],
    );
    const earlier = rows.map(toMessage);
    const digest = messageDigest(raw);
    const original = earlier.find((e) => e.digest === digest);
    return original ? { original } : { reusedBy: earlier[0] };
  }

  async get(id: string): Promise<LoggedMessage | undefined> {
    const rows = await this.sql.query<MessageRow>(`SELECT ${COLUMNS} FROM message WHERE id = ?`, [id]);
    return rows[0] && toMessage(rows[0]);
  }

  /** Newest first. */
  async list(filter: MessageFilter = {}): Promise<LoggedMessage[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    const add = (sql: string, value: SqlValue) => {
      where.push(sql);
      params.push(value);
    };
    if (filter.status) add('status = ?', filter.status);
    if (filter.participantId) add('participant_id = ?', filter.participantId);
    if (filter.type) {
      if (filter.type.includes('^')) add('message_type = ?', filter.type);
      else {
        add('(message_type = ? OR message_type LIKE ?)', filter.type);
        params.push(`${filter.type}^%`);
      }
    }
    if (filter.patient) add('patient = ?', filter.patient);
    if (filter.since !== undefined) add('received_at >= ?', filter.since);
    if (filter.until !== undefined) add('received_at < ?', filter.until);
    if (filter.before) add('id < ?', filter.before);
    const rows = await this.sql.query<MessageRow>(
      `SELECT ${COLUMNS} FROM message ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      [...params, Math.min(filter.limit ?? 50, 1000)],
    );
    return rows.map(toMessage);
  }

  /**
   * Each sender's traffic since `since` (ms): messages, failures, channels, and its last message ever
   * (participantId undefined: messages whose sender was not recognised). The per-sender last message
   * is one index lookup each (message_sender), not a scan of the log.
   */
  async traffic(since: number, participantIds: readonly string[]): Promise<SenderTraffic[]> {
    const rows = await this.sql.query<{ participant_id: string | null; channel: string; format: string; messages: number | string; failed: number | string }>(
      `SELECT participant_id, channel, format, COUNT(*) AS messages, SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed
       FROM message WHERE received_at >= ? GROUP BY participant_id, channel, format`,
      [since],
    );
    const bySender = new Map<string | undefined, SenderTraffic>();
    const entry = (id: string | undefined): SenderTraffic => {
      let t = bySender.get(id);
      if (!t) bySender.set(id, (t = { participantId: id, messages: 0, failed: 0, channels: [] }));
      return t;
    };
    for (const id of participantIds) entry(id);
    for (const r of rows) {
      const t = entry(r.participant_id ?? undefined);
      t.messages += Number(r.messages);
      t.failed += Number(r.failed ?? 0);
      t.channels.push(`${r.channel} ${r.format}`);
    }
    for (const t of bySender.values()) {
      const last = await this.sql.query<{ last: number | string | null }>(
        `SELECT MAX(received_at) AS last FROM message WHERE ${t.participantId === undefined ? 'participant_id IS NULL' : 'participant_id = ?'}`,
        t.participantId === undefined ? [] : [t.participantId],
      );
      if (last[0]?.last !== null && last[0]?.last !== undefined) t.lastReceivedAt = Number(last[0].last);
      t.channels.sort();
    }
    return [...bySender.values()].filter((t) => t.participantId !== undefined || t.messages > 0);
  }

  /** Messages stored but never processed: the process stopped between receiving and applying them. */
  async unfinished(format: string, limit = 1000): Promise<LoggedMessage[]> {
    const rows = await this.sql.query<MessageRow>(`SELECT ${COLUMNS} FROM message WHERE status = 'received' AND format = ? ORDER BY id LIMIT ?`, [format, limit]);
    return rows.map(toMessage);
  }
}
