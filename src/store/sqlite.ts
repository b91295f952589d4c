import BetterSqlite3 from 'better-sqlite3';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { ensurePrivateFile, PRIVATE_DIRECTORY_MODE, restrictExistingFiles } from './private-files.js';
import { type Database, type Dialect, Mutex, type RowSet, type SqlExecutor, type SqlValue } from './database.js';
import { BACKSTOP_AUTOCHECKPOINT_PAGES, WalCheckpointer } from './wal-checkpointer.js';

const dialect: Dialect = { name: 'sqlite', forUpdate: '', bigint: 'INTEGER', double: 'REAL', contains: (column) => `instr(${column}, ?) > 0` };

type Connection = BetterSqlite3.Database;

/** Connection settings shared by Tessera and the benchmark's raw-insert ceiling, so both pay the same I/O. */
export const SQLITE_PRAGMAS = [
  'journal_mode = WAL',
  // Durable against a process crash (the WAL is written before COMMIT returns); fsync at checkpoints.
  'synchronous = NORMAL',
  'busy_timeout = 10000',
  'cache_size = -65536',
  // Checkpoints run on a thread of their own (WalCheckpointer); this is the backstop should it stop.
  // Fewer, larger checkpoints: each one fsyncs, and fsync dominates bulk writes on slow disks.
  `wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`,
  // The WAL file is cut back to this size once a checkpoint has let the writer start it over.
  `journal_size_limit = ${64 * 1024 * 1024}`,
  'temp_store = MEMORY',
];

/** How long a write transaction waits for the write lock in all (as `busy_timeout` had it). */
const WRITE_LOCK_WAIT_MS = 10_000;
/**
 * The write connection's own busy timeout: short, because a busy handler sleeps on the thread that
 * serves requests and acknowledges messages; `beginWrite` does the longer wait between event-loop turns.
 */
const WRITER_BUSY_TIMEOUT_MS = 20;

/**
 * BEGIN IMMEDIATE, waiting for the write lock without blocking the event loop. SQLite does not always
 * call its busy handler: in 5 of 13 profiled 8-sender intake runs (session 10), BEGIN IMMEDIATE failed
 * with SQLITE_BUSY after about 130 ms, far short of a 10 s busy_timeout, presumably against the
 * checkpointer thread's RESTART (the other connection that takes locks beyond reading; not confirmed).
 * Beginning has no effects, so it is simply tried again.
 */
async function beginWrite(conn: Connection): Promise<void> {
  const deadline = performance.now() + WRITE_LOCK_WAIT_MS;
  for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
    try {
      conn.exec('BEGIN IMMEDIATE');
      return;
    } catch (err) {
      const busy = (err as { code?: string }).code?.startsWith('SQLITE_BUSY');
      if (!busy || performance.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

function openConnection(file: string, readonly: boolean): Connection {
  const db = new BetterSqlite3(file, { readonly: readonly && file !== ':memory:' });
  for (const pragma of SQLITE_PRAGMAS) {
    db.pragma(pragma);
  }
  return db;
}

/**
 * A writing connection with Tessera's settings and background checkpoints, for the benchmarks' raw
 * baselines, so that they pay the same I/O as the store they are compared with.
 */
export function openRawWriter(file: string): { connection: Connection; close(): Promise<void> } {
  const connection = openConnection(file, false);
  const checkpointer = new WalCheckpointer(file);
  return {
    connection,
    async close() {
      await checkpointer.stop();
      connection.close();
    },
  };
}

/** INSERT text per column list and table, kept so that the statement cache is not keyed by a string built anew on every call. */
const insertTexts = new WeakMap<readonly string[], Map<string, string>>();

function insertSql(table: string, columns: readonly string[]): string {
  let byTable = insertTexts.get(columns);
  if (!byTable) insertTexts.set(columns, (byTable = new Map()));
  let sql = byTable.get(table);
  if (!sql) byTable.set(table, (sql = `INSERT INTO ${table} (${columns.join(',')}) VALUES (${columns.map(() => '?').join(',')})`));
  return sql;
}

/** Prepared statements kept per connection; the least recently used go first (texts with IN lists of every length add up). */
const STATEMENT_CACHE_SIZE = 2000;

/**
 * SQLite reads the value bound to `LIMIT ?` while planning and then marks the statement to be compiled
 * again whenever that parameter is bound anew: every paged search was compiled afresh on every execution
 * (0.1 ms for a search carrying the access policy's conditions, ten times its lookups; decision 0032).
 * `(? + 0)` is an expression the planner leaves alone.
 */
export function withUnplannedLimits(sql: string): string {
  return sql.replace(/\bLIMIT \?/g, 'LIMIT (? + 0)');
}

/** Executes statements on one better-sqlite3 connection with a statement cache. */
class SqliteExecutor implements SqlExecutor {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  /** Channels signalled by the open transaction (the writer's), told to listeners once it commits. */
  readonly signals = new Set<string>();

  constructor(readonly connection: Connection) {}

  prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.statements.get(sql);
    if (stmt) {
      // Most recently used last: Map keeps insertion order.
      this.statements.delete(sql);
    } else {
      stmt = this.connection.prepare(withUnplannedLimits(sql));
      if (this.statements.size >= STATEMENT_CACHE_SIZE) this.statements.delete(this.statements.keys().next().value as string);
    }
    this.statements.set(sql, stmt);
    return stmt;
  }

  async query<T>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.prepare(sql).all(...params) as T[];
  }

  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    return this.prepare(sql).run(...params).changes;
  }

  async insertRows(table: string, columns: readonly string[], rows: SqlValue[][]): Promise<void> {
    if (!rows.length) {
      return;
    }
    const stmt = this.prepare(insertSql(table, columns));
    for (const row of rows) {
      stmt.run(...row);
    }
  }

  async insertRowSets(sets: RowSet[]): Promise<void> {
    for (const { table, columns, rows } of sets) await this.insertRows(table, columns, rows);
  }

  async lock(): Promise<void> {
    // Writers are serialised by the database-wide write mutex already.
  }

  async lockSchema(): Promise<void> {}

  async notify(channel: string): Promise<void> {
    this.signals.add(channel);
  }

  async commitWithoutWaitingForDisk(): Promise<void> {
    // synchronous=NORMAL: a WAL commit does not wait for the disk already.
  }

  async exec(sql: string): Promise<void> {
    this.connection.exec(sql);
  }
}

/**
 * SQLite backend. One write connection (transactions serialised by a mutex, since better-sqlite3 is
 * synchronous and a transaction may await between statements) and one read connection, so that reads
 * outside a transaction never see another request's uncommitted writes (WAL gives them a snapshot).
 */
export class SqliteDatabase implements Database {
  readonly dialect = dialect;
  /** One writer: a second transaction would only wait for the write mutex. */
  readonly concurrentWriters = 1;
  private readonly writer: SqliteExecutor;
  private readonly reader: SqliteExecutor;
  private readonly writeMutex = new Mutex();
  private checkpointer?: WalCheckpointer;
  private readonly file: string;
  /** Commit signals, within this process (another process on the file polls). */
  private readonly channels = new EventEmitter().setMaxListeners(0);

  /**
   * `checkpoints`: the pace of this file's checkpointer thread (wal-checkpointer.ts), or false for none:
   * when another connection to the same file (another thread's) checkpoints it already.
   */
  constructor(file: string, options: { checkpoints?: false | { idleMs?: number; busyMs?: number } } = {}) {
    if (file !== ':memory:') {
      mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
      // SQLite gives the -wal and -shm files it creates the database file's mode, so the database file is
      // made 0600 before SQLite opens it; ones left by an earlier run are tightened too.
      ensurePrivateFile(file);
      restrictExistingFiles([`${file}-wal`, `${file}-shm`, `${file}-journal`]);
    }
    this.writer = new SqliteExecutor(openConnection(file, false));
    this.writer.connection.pragma(`busy_timeout = ${WRITER_BUSY_TIMEOUT_MS}`);
    this.reader = file === ':memory:' ? this.writer : new SqliteExecutor(openConnection(file, true));
    this.file = file;
    if (options.checkpoints !== false) this.startCheckpoints(options.checkpoints);
  }

  /** Whether this connection runs the file's checkpointer thread. */
  get checkpointing(): boolean {
    return !!this.checkpointer;
  }

  /**
   * Starts the file's checkpointer thread on this connection, if it has none: for a connection opened
   * without one because another thread's connection checkpointed the file, when that thread has stopped.
   */
  startCheckpoints(pace?: { idleMs?: number; busyMs?: number }): void {
    if (this.file !== ':memory:' && !this.checkpointer) this.checkpointer = new WalCheckpointer(this.file, pace);
  }

  query<T>(sql: string, params?: SqlValue[]): Promise<T[]> {
    return this.reader.query<T>(sql, params);
  }

  async run(sql: string, params?: SqlValue[]): Promise<number> {
    return this.transaction((tx) => tx.run(sql, params));
  }

  async insertRows(table: string, columns: readonly string[], rows: SqlValue[][]): Promise<void> {
    await this.transaction((tx) => tx.insertRows(table, columns, rows));
  }

  async insertRowSets(sets: RowSet[]): Promise<void> {
    await this.transaction((tx) => tx.insertRowSets(sets));
  }

  async lock(): Promise<void> {}

  async lockSchema(): Promise<void> {}

  async notify(channel: string): Promise<void> {
    this.channels.emit(channel);
  }

  async commitWithoutWaitingForDisk(): Promise<void> {}

  async listen(channel: string, fn: () => void): Promise<() => Promise<void>> {
    this.channels.on(channel, fn);
    return async () => {
      this.channels.off(channel, fn);
    };
  }

  isTransientConflict(): boolean {
    // Transactions run one at a time; waiting for the lock of another process is done in beginWrite.
    return false;
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const release = await this.writeMutex.acquire();
    const conn = this.writer.connection;
    let committed: string[] = [];
    try {
      await beginWrite(conn);
      try {
        const result = await fn(this.writer);
        conn.exec('COMMIT');
        committed = [...this.writer.signals];
        return result;
      } catch (err) {
        if (conn.inTransaction) {
          conn.exec('ROLLBACK');
        }
        throw err;
      }
    } finally {
      this.writer.signals.clear();
      release();
      for (const channel of committed) this.channels.emit(channel);
    }
  }

  async exec(sql: string): Promise<void> {
    await this.transaction((tx) => tx.exec(sql));
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    const release = await this.writeMutex.acquire();
    try {
      if (this.reader !== this.writer) {
        this.reader.connection.close();
      }
      this.writer.connection.close();
    } finally {
      release();
    }
  }
}
