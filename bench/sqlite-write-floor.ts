import BetterSqlite3 from 'better-sqlite3';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRawWriter } from '../src/store/sqlite.js';

/** One committed transaction's writes, in order: statement text and parameters. */
type RecordedTransaction = [sql: string, params: unknown[]][];

/**
 * The storage floor of an intake series: every row the series wrote, replayed with nothing else.
 *
 * While recording, each write statement (INSERT, UPDATE, DELETE) that any better-sqlite3 connection runs
 * is kept with its parameters, grouped by the transaction it committed in; `replay` then runs exactly those
 * statements against a copy of the store taken before the series, with the same settings (and background checkpoints) and prepared
 * statements, one recorded transaction per commit or several per commit. Reads (conditional searches, MPI
 * candidates, duplicate checks), mapping, validation and index extraction are all left out: whatever
 * Tessera does, it cannot write these rows faster than this on this machine.
 *
 * Benchmark instrumentation only: it wraps the driver's prototype, which is why it lives in bench/.
 */
export class SqliteWriteRecorder {
  private recording = false;
  private current: RecordedTransaction = [];
  private readonly committed: RecordedTransaction[] = [];
  private rolledBack = 0;

  /** `file`: the store whose writes are recorded (the audit log's own file, audit.db, is not the store). */
  constructor(file: string) {
    const proto = BetterSqlite3.prototype as unknown as { exec(sql: string): unknown; prepare(sql: string): BetterSqlite3.Statement };
    const exec = proto.exec;
    const prepare = proto.prepare;
    const self = this;
    proto.exec = function (this: { name: string }, sql: string) {
      const result = exec.call(this, sql);
      if (self.recording && this.name === file) self.boundary(sql);
      return result;
    };
    proto.prepare = function (this: { name: string }, sql: string) {
      const statement = prepare.call(this, sql);
      if (this.name === file && /^\s*(INSERT|UPDATE|DELETE)\b/i.test(sql)) {
        const run = statement.run.bind(statement);
        statement.run = (...params: unknown[]) => {
          const result = run(...params);
          if (self.recording) self.current.push([sql, params]);
          return result;
        };
      }
      return statement;
    };
  }

  start(): void {
    this.recording = true;
    this.current = [];
  }

  stop(): { transactions: RecordedTransaction[]; rolledBack: number } {
    this.recording = false;
    return { transactions: this.committed.splice(0), rolledBack: this.rolledBack };
  }

  private boundary(sql: string): void {
    const verb = sql.trim().split(/\s+/)[0].toUpperCase();
    if (verb === 'BEGIN') {
      this.current = [];
    } else if (verb === 'COMMIT') {
      this.committed.push(this.current);
      this.current = [];
    } else if (verb === 'ROLLBACK') {
      // A savepoint rolled back (a failed message) would need its writes undone here: counted, so the report can say the floor is not exact.
      this.rolledBack++;
    }
  }
}

/** A consistent copy of a live SQLite store (online backup), to replay onto. */
export async function snapshotStore(file: string): Promise<{ file: string; remove: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-floor-'));
  const copy = join(dir, 'snapshot.db');
  const source = new BetterSqlite3(file, { readonly: true });
  await source.backup(copy);
  source.close();
  return { file: copy, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Replays recorded transactions onto a copy of the snapshot, `perCommit` of them in each commit; returns the
 * seconds and the latency of each commit (what a sender waiting on it would see at least).
 */
export async function replayWrites(snapshot: string, transactions: RecordedTransaction[], perCommit: number): Promise<{ seconds: number; latencies: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-floor-'));
  const file = join(dir, 'floor.db');
  copyFileSync(snapshot, file); // page for page, as the store was
  const raw = openRawWriter(file);
  const db = raw.connection;
  const statements = new Map<string, BetterSqlite3.Statement>();
  const statement = (sql: string) => {
    let s = statements.get(sql);
    if (!s) statements.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < transactions.length; i += perCommit) {
    const t = performance.now();
    db.exec('BEGIN IMMEDIATE');
    for (const tx of transactions.slice(i, i + perCommit)) {
      for (const [sql, params] of tx) statement(sql).run(...params);
    }
    db.exec('COMMIT');
    latencies.push(performance.now() - t);
  }
  const seconds = (performance.now() - started) / 1000;
  await raw.close();
  rmSync(dir, { recursive: true, force: true });
  return { seconds, latencies };
}
