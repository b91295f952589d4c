import type { SqlExecutor } from '../store/database.js';
import type { PersonFeatures } from './features.js';

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

/** The MPI's tables (schema migration 3), one statement per concept. All calls run inside a write transaction. */
export class MpiStore {
  constructor(private readonly sql: SqlExecutor) {}

  async source(patientId: string): Promise<SourceRecord | undefined> {
    const rows = await this.sql.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM mpi_source WHERE patient_id = ?`, [patientId]);
    return rows[0] && toRecord(rows[0]);
  }

  /** The source record a source system's identifier (its MRN) names. */
  async sourceByIdentifier(system: string, value: string): Promise<string | undefined> {
    const rows = await this.sql.query<{ patient_id: string }>('SELECT patient_id FROM mpi_source WHERE source_system = ? AND source_value = ?', [system, value]);
    return rows[0]?.patient_id;
  }

  async sourcesOf(enterpriseId: string): Promise<SourceRecord[]> {
    const rows = await this.sql.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM mpi_source WHERE enterprise_id = ? ORDER BY patient_id`, [enterpriseId]);
    return rows.map(toRecord);
  }

  /** Source records sharing at least one blocking key with the given keys (the candidates to score). */
  async candidates(keys: string[], excludePatientId: string, limit: number): Promise<SourceRecord[]> {
    if (!keys.length) {
      return [];
    }
    const rows = await this.sql.query<SourceRow>(
      `SELECT ${SOURCE_COLUMNS} FROM mpi_source WHERE patient_id IN (
         SELECT patient_id FROM mpi_block WHERE key IN (${keys.map(() => '?').join(',')}) AND patient_id <> ?)
       ORDER BY patient_id LIMIT ?`,
      [...keys, excludePatientId, limit],
    );
    return rows.map(toRecord);
  }

  async saveSource(record: SourceRecord, keys: string[]): Promise<void> {
    await this.sql.run('DELETE FROM mpi_source WHERE patient_id = ?', [record.patientId]);
    await this.sql.run(`INSERT INTO mpi_source (${SOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
      record.patientId,
      record.enterpriseId,
      record.sourceSystem ?? null,
      record.sourceValue ?? null,
      JSON.stringify(record.features),
      record.linkedBy,
      record.score ?? null,
      record.updatedAt,
    ]);
    await this.sql.run('DELETE FROM mpi_block WHERE patient_id = ?', [record.patientId]);
    await this.sql.insertRows(
      'mpi_block',
      ['key', 'patient_id'],
      keys.map((k) => [k, record.patientId]),
    );
  }

  async removeSource(patientId: string): Promise<void> {
    await this.sql.run('DELETE FROM mpi_block WHERE patient_id = ?', [patientId]);
    await this.sql.run('DELETE FROM mpi_source WHERE patient_id = ?', [patientId]);
  }

  async createEnterprise(enterpriseId: string, now: number): Promise<void> {
    await this.sql.run("INSERT INTO mpi_enterprise (enterprise_id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)", [enterpriseId, now, now]);
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

  /** Opens a possible match for review, unless the pair already has a ruling or is already open. */
  async openPair(a: string, b: string, score: number, detail: unknown, now: number): Promise<boolean> {
    const [first, second] = a < b ? [a, b] : [b, a];
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

  async appendEvent(event: { at: number; actor: string; action: string; enterpriseId?: string; patientId?: string; reason?: string; detail?: unknown }): Promise<void> {
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
