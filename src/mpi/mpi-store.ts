import type { SqlExecutor } from '../store/database.js';
import type { PersonFeatures } from './features.js';
import { fullNameKey } from './name-frequency.js';

/** How a source record came to be in its enterprise identity. */
export type LinkedBy = 'origin' | 'auto' | 'steward';

export interface SourceRecord {
  patientId: string;
  enterpriseId: string;
  sourceSystem?: string;
  sourceValue?: string;
  features: PersonFeatures;
  linkedBy: LinkedBy;
  score?: number;
  updatedAt: number;
}

interface SourceRow {
  patient_id: string;
  enterprise_id: string;
  source_system: string | null;
  source_value: string | null;
  features: string;
  linked_by: LinkedBy;
  score: number | null;
  updated_at: number;
}

const SOURCE_COLUMNS = 'patient_id, enterprise_id, source_system, source_value, features, linked_by, score, updated_at';

function toRecord(r: SourceRow): SourceRecord {
  return {
    patientId: r.patient_id,
    enterpriseId: r.enterprise_id,
    sourceSystem: r.source_system ?? undefined,
    sourceValue: r.source_value ?? undefined,
    features: JSON.parse(r.features) as PersonFeatures,
    linkedBy: r.linked_by,
    score: r.score ?? undefined,
    updatedAt: Number(r.updated_at),
  };
}

export type EnterpriseStatus = 'active' | 'merged' | 'retired';
export type PairStatus = 'open' | 'accepted' | 'rejected';

export interface EnterpriseRecord {
  enterpriseId: string;
  status: EnterpriseStatus;
  mergedInto?: string;
  createdAt: number;
}

/** A possible match: two source records, as stored in mpi_pair (patientA < patientB). */
export interface PairRecord {
  patientA: string;
  patientB: string;
  status: PairStatus;
  score: number;
  detail: unknown;
  createdAt: number;
  decidedAt?: number;
  decidedBy?: string;
  reason?: string;
}

interface PairRow {
  patient_a: string;
  patient_b: string;
  status: PairStatus;
  score: number;
  detail: string;
  created_at: number;
  decided_at: number | null;
  decided_by: string | null;
  reason: string | null;
}

const PAIR_COLUMNS = 'patient_a, patient_b, status, score, detail, created_at, decided_at, decided_by, reason';

function toPair(r: PairRow): PairRecord {
  return {
    patientA: r.patient_a,
    patientB: r.patient_b,
    status: r.status,
    score: Number(r.score),
    detail: JSON.parse(r.detail) as unknown,
    createdAt: Number(r.created_at),
    decidedAt: r.decided_at === null ? undefined : Number(r.decided_at),
    decidedBy: r.decided_by ?? undefined,
    reason: r.reason ?? undefined,
  };
}

export interface MpiEventRecord {
  seq: number;
  at: number;
  actor: string;
  action: string;
  enterpriseId?: string;
  patientId?: string;
  reason?: string;
  detail?: unknown;
}

interface EventRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  enterprise_id: string | null;
  patient_id: string | null;
  reason: string | null;
  detail: string | null;
}

const EVENT_COLUMNS = 'seq, at, actor, action, enterprise_id, patient_id, reason, detail';

function toEvent(r: EventRow): MpiEventRecord {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    actor: r.actor,
    action: r.action,
    enterpriseId: r.enterprise_id ?? undefined,
    patientId: r.patient_id ?? undefined,
    reason: r.reason ?? undefined,
    detail: r.detail === null ? undefined : (JSON.parse(r.detail) as unknown),
  };
}

/** Pair key order: the smaller id first, so (a, b) and (b, a) are one row. */
export function orderedPair(a: string, b: string): [string, string] {
  return a < b ? [a, b] : [b, a];
}

/** The MPI's tables (schema migration 3), one statement per concept. All calls run inside a write transaction. */
export class MpiStore {
  constructor(readonly sql: SqlExecutor) {}

  async source(patientId: string): Promise<SourceRecord | undefined> {
    const rows = await this.sql.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM mpi_source WHERE patient_id = ?`, [patientId]);
    return rows[0] && toRecord(rows[0]);
  }

  /** The source record a source system's identifier (its MRN) names. */
  async sourceByIdentifier(system: string, value: string): Promise<string | undefined> {
    const rows = await this.sql.query<{ patient_id: string }>('SELECT patient_id FROM mpi_source WHERE source_system = ? AND source_value = ?', [system, value]);
    return rows[0]?.patient_id;
  }

  /** Whether any source record carries an identifier of this system (a known assigning authority). */
  async knowsSourceSystem(system: string): Promise<boolean> {
    return (await this.sql.query('SELECT 1 FROM mpi_source WHERE source_system = ? LIMIT 1', [system])).length > 0;
  }

  /** The enterprise of each of these source records (those the index holds). */
  async enterpriseIdsOf(patientIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const unique = [...new Set(patientIds)];
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500);
      const rows = await this.sql.query<{ patient_id: string; enterprise_id: string }>(
        `SELECT patient_id, enterprise_id FROM mpi_source WHERE patient_id IN (${chunk.map(() => '?').join(',')})`,
        chunk,
      );
      rows.forEach((r) => out.set(r.patient_id, r.enterprise_id));
    }
    return out;
  }

  async sourcesOf(enterpriseId: string): Promise<SourceRecord[]> {
    const rows = await this.sql.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM mpi_source WHERE enterprise_id = ? ORDER BY patient_id`, [enterpriseId]);
    return rows.map(toRecord);
  }

  /**
   * Source records sharing at least one blocking key with the given keys (the candidates to score), at
   * most `perKey` for each key (the newest: ids are time-ordered), so a value thousands share (a common
   * name and birth date) costs a bounded read.
   */
  async candidates(keys: string[], excludePatientId: string, perKey: number): Promise<SourceRecord[]> {
    if (!keys.length) {
      return [];
    }
    const perKeySelect = '(SELECT patient_id FROM mpi_block WHERE key = ? AND patient_id <> ? ORDER BY patient_id DESC LIMIT ?)';
    const union = keys.map((_, i) => `SELECT patient_id FROM ${perKeySelect} k${i}`).join(' UNION ');
    const rows = await this.sql.query<SourceRow>(
      `SELECT ${SOURCE_COLUMNS} FROM mpi_source WHERE patient_id IN (${union}) ORDER BY patient_id`,
      keys.flatMap((key) => [key, excludePatientId, perKey]),
    );
    return rows.map(toRecord);
  }

  /** Stores a source record and its blocking keys; `replacing` false: the record is known not to be stored yet (no deletes). */
  async saveSource(record: SourceRecord, keys: string[], replacing = true): Promise<void> {
    if (replacing) await this.sql.run('DELETE FROM mpi_source WHERE patient_id = ?', [record.patientId]);
    await this.sql.run(`INSERT INTO mpi_source (${SOURCE_COLUMNS}, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      record.patientId,
      record.enterpriseId,
      record.sourceSystem ?? null,
      record.sourceValue ?? null,
      JSON.stringify(record.features),
      record.linkedBy,
      record.score ?? null,
      record.updatedAt,
      fullNameKey(record.features),
    ]);
    if (replacing) await this.sql.run('DELETE FROM mpi_block WHERE patient_id = ?', [record.patientId]);
    await this.sql.insertRows(
      'mpi_block',
      ['key', 'patient_id'],
      keys.map((k) => [k, record.patientId]),
    );
  }

  /** Moves source records into another enterprise (a steward's link, a merge or an unmerge). */
  async moveSources(patientIds: string[], enterpriseId: string, linkedBy: LinkedBy, now: number): Promise<void> {
    for (const patientId of patientIds) {
      await this.sql.run('UPDATE mpi_source SET enterprise_id = ?, linked_by = ?, score = NULL, updated_at = ? WHERE patient_id = ?', [enterpriseId, linkedBy, now, patientId]);
    }
  }

  async removeSource(patientId: string): Promise<void> {
    await this.sql.run('DELETE FROM mpi_block WHERE patient_id = ?', [patientId]);
    await this.sql.run('DELETE FROM mpi_source WHERE patient_id = ?', [patientId]);
  }

  async createEnterprise(enterpriseId: string, now: number): Promise<void> {
    await this.sql.run("INSERT INTO mpi_enterprise (enterprise_id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)", [enterpriseId, now, now]);
  }

  async enterprise(enterpriseId: string): Promise<EnterpriseRecord | undefined> {
    const rows = await this.sql.query<{ status: EnterpriseStatus; merged_into: string | null; created_at: number }>(
      'SELECT status, merged_into, created_at FROM mpi_enterprise WHERE enterprise_id = ?',
      [enterpriseId],
    );
    return rows[0] && { enterpriseId, status: rows[0].status, mergedInto: rows[0].merged_into ?? undefined, createdAt: Number(rows[0].created_at) };
  }

  async setEnterpriseStatus(enterpriseId: string, status: 'active' | 'merged' | 'retired', mergedInto: string | undefined, now: number): Promise<void> {
    await this.sql.run('UPDATE mpi_enterprise SET status = ?, merged_into = ?, updated_at = ? WHERE enterprise_id = ?', [status, mergedInto ?? null, now, enterpriseId]);
  }

  /** Pairs involving this record that a steward has ruled on as never to be linked. */
  async noLinkPartners(patientId: string): Promise<Set<string>> {
    const rows = await this.sql.query<{ other: string }>(
      `SELECT patient_b AS other FROM mpi_pair WHERE patient_a = ? AND status = 'rejected'
       UNION ALL SELECT patient_a AS other FROM mpi_pair WHERE patient_b = ? AND status = 'rejected'`,
      [patientId, patientId],
    );
    return new Set(rows.map((r) => r.other));
  }

  /** Pairs among these records a steward ruled apart, as `a|b` (a < b). */
  async rejectedAmong(patientIds: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    const ids = [...new Set(patientIds)];
    for (let i = 0; i < ids.length; i += 400) {
      const chunk = ids.slice(i, i + 400);
      const marks = chunk.map(() => '?').join(',');
      const rows = await this.sql.query<{ patient_a: string; patient_b: string }>(
        `SELECT patient_a, patient_b FROM mpi_pair WHERE status = 'rejected' AND (patient_a IN (${marks}) OR patient_b IN (${marks}))`,
        [...chunk, ...chunk],
      );
      rows.forEach((r) => out.add(`${r.patient_a}|${r.patient_b}`));
    }
    return out;
  }

  async pair(a: string, b: string): Promise<PairRecord | undefined> {
    const rows = await this.sql.query<PairRow>(`SELECT ${PAIR_COLUMNS} FROM mpi_pair WHERE patient_a = ? AND patient_b = ?`, orderedPair(a, b));
    return rows[0] && toPair(rows[0]);
  }

  /**
   * The review queue (or the rulings): pairs with this status, oldest first, and how many there are. An
   * open pair whose records have since come together in one enterprise (another decision linked them) or
   * whose record was deleted has nothing left to decide and is not listed.
   */
  async pairs(status: PairStatus, limit: number, offset: number): Promise<{ pairs: PairRecord[]; total: number }> {
    const live =
      status === 'open'
        ? `JOIN mpi_source sa ON sa.patient_id = p.patient_a JOIN mpi_source sb ON sb.patient_id = p.patient_b AND sb.enterprise_id <> sa.enterprise_id`
        : '';
    const columns = PAIR_COLUMNS.split(', ').map((c) => `p.${c}`).join(', ');
    const rows = await this.sql.query<PairRow>(`SELECT ${columns} FROM mpi_pair p ${live} WHERE p.status = ? ORDER BY p.created_at, p.patient_a, p.patient_b LIMIT ? OFFSET ?`, [
      status,
      limit,
      offset,
    ]);
    const [{ n }] = await this.sql.query<{ n: number }>(`SELECT COUNT(*) AS n FROM mpi_pair p ${live} WHERE p.status = ?`, [status]);
    return { pairs: rows.map(toPair), total: Number(n) };
  }

  /** Records a steward's ruling on a pair, creating the pair when no match had opened it (unlink, unmerge). */
  async rule(a: string, b: string, status: 'accepted' | 'rejected', by: string, reason: string | undefined, now: number): Promise<void> {
    const [first, second] = orderedPair(a, b);
    const updated = await this.sql.run('UPDATE mpi_pair SET status = ?, decided_at = ?, decided_by = ?, reason = ? WHERE patient_a = ? AND patient_b = ?', [
      status,
      now,
      by,
      reason ?? null,
      first,
      second,
    ]);
    if (!updated) {
      await this.sql.run(
        "INSERT INTO mpi_pair (patient_a, patient_b, status, score, detail, created_at, decided_at, decided_by, reason) VALUES (?, ?, ?, 0, '{}', ?, ?, ?, ?)",
        [first, second, status, now, now, by, reason ?? null],
      );
    }
  }

  /** Opens a possible match for review, unless the pair already has a ruling or is already open. */
  async openPair(a: string, b: string, score: number, detail: unknown, now: number): Promise<boolean> {
    const [first, second] = orderedPair(a, b);
    const existing = await this.sql.query<{ status: string }>('SELECT status FROM mpi_pair WHERE patient_a = ? AND patient_b = ?', [first, second]);
    if (existing.length) {
      if (existing[0].status === 'open') {
        await this.sql.run('UPDATE mpi_pair SET score = ?, detail = ? WHERE patient_a = ? AND patient_b = ?', [score, JSON.stringify(detail), first, second]);
      }
      return false;
    }
    await this.sql.run("INSERT INTO mpi_pair (patient_a, patient_b, status, score, detail, created_at) VALUES (?, ?, 'open', ?, ?, ?)", [
      first,
      second,
      score,
      JSON.stringify(detail),
      now,
    ]);
    return true;
  }

  /** The event log after `afterSeq`, in order: what subscribers (notifications, the record view) read. */
  async events(afterSeq: number, limit: number, filter: { enterpriseId?: string; action?: string } = {}): Promise<MpiEventRecord[]> {
    const where = ['seq > ?'];
    const params: (string | number)[] = [afterSeq];
    if (filter.enterpriseId) {
      where.push('enterprise_id = ?');
      params.push(filter.enterpriseId);
    }
    if (filter.action) {
      where.push('action = ?');
      params.push(filter.action);
    }
    const rows = await this.sql.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM mpi_event WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, [...params, limit]);
    return rows.map(toEvent);
  }

  /** The most recent event of this action on this enterprise. */
  async lastEvent(enterpriseId: string, action: string): Promise<MpiEventRecord | undefined> {
    const rows = await this.sql.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM mpi_event WHERE enterprise_id = ? AND action = ? ORDER BY seq DESC LIMIT 1`, [
      enterpriseId,
      action,
    ]);
    return rows[0] && toEvent(rows[0]);
  }

  async appendEvent(event: Omit<MpiEventRecord, 'seq'>): Promise<void> {
    await this.sql.run('INSERT INTO mpi_event (at, actor, action, enterprise_id, patient_id, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      event.at,
      event.actor,
      event.action,
      event.enterpriseId ?? null,
      event.patientId ?? null,
      event.reason ?? null,
      event.detail === undefined ? null : JSON.stringify(event.detail),
    ]);
  }
}
