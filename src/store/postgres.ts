import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Database, Dialect, QueryOptions, RowSet, SqlExecutor, SqlValue } from './database.js';
import { copyRows, COPY_MIN_ROWS } from './pg-copy.js';
import { channelName, listenOn } from './pg-listen.js';
import { LOCK_ONE_STRIPE, LOCK_STRIPES, lockStripes } from './lock-stripes.js';

const dialect: Dialect = { name: 'postgres', forUpdate: ' FOR UPDATE', bigint: 'BIGINT', double: 'DOUBLE PRECISION', contains: (column) => `strpos(${column}, ?) > 0` };

/** PostgreSQL returns BIGINT as text by default; our BIGINTs are epoch milliseconds, safe as numbers. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) {
      return (value: string) => Number(value);
    }
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** Rewrites portable `?` placeholders to PostgreSQL's `$n`. Our SQL never contains a literal `?`. */
const placeholderCache = new Map<string, string>();
function toPg(sql: string): string {
  let out = placeholderCache.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    if (placeholderCache.size < 10_000) {
      placeholderCache.set(sql, out);
    }
  }
  return out;
}

const MAX_PARAMS = 60_000;

/** A multi-row INSERT with numbered placeholders, appending its values to `params`. */
function insertStatement({ table, columns, rows }: RowSet, params: SqlValue[]): string {
  const tuples = rows.map((row) => `(${row.map((value) => `$${params.push(value)}`).join(',')})`);
  return `INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')}`;
}

/** Distinct statement texts kept prepared (on each connection that runs them). */
const MAX_NAMED_STATEMENTS = 400;

/**
 * PostgreSQL plans an unnamed statement on every execution. For a search carrying the access policy's
 * consent and label conditions, planning took 0.4-0.7 ms against 0.13 ms of execution (decision 0032). A
 * named (prepared) statement is planned for its first executions and then, when PostgreSQL finds a
 * generic plan no costlier than the custom ones, not again. Texts are named once they recur, and only
 * so many: texts with IN lists of every length would otherwise leave a prepared statement per length on
 * every connection for the life of the process.
 */
class StatementNames {
  private readonly names = new Map<string, string>();
  private readonly seenOnce = new Set<string>();

  nameOf(text: string): string | undefined {
    const name = this.names.get(text);
    if (name || this.names.size >= MAX_NAMED_STATEMENTS) return name;
    if (!this.seenOnce.has(text)) {
      if (this.seenOnce.size >= 10 * MAX_NAMED_STATEMENTS) this.seenOnce.clear();
      this.seenOnce.add(text);
      return undefined;
    }
    this.seenOnce.delete(text);
    const named = `t${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
    this.names.set(text, named);
    return named;
  }
}

class PgExecutor implements SqlExecutor {
  /** Channels the open transaction signals, and whether it commits without waiting for the disk: both sent with its COMMIT. */
  private readonly signals = new Set<string>();
  private relaxedCommit = false;

  constructor(
    private readonly client: pg.Pool | pg.PoolClient,
    private readonly statementNames: StatementNames,
    private readonly channelOf: (channel: string) => string,
    private readonly inTransaction = false,
  ) {}

  /**
   * The text that commits the open transaction: COMMIT, after its commit setting and its signals, in the
   * same round trip (the simple protocol runs the statements in order, and stops at the first error, so the
   * transaction then rolls back as if they had failed on their own). A signal is sent by PostgreSQL at
   * commit, and the setting read at commit, wherever in the transaction they are given.
   */
  commitText(): string {
    const client = this.client as pg.PoolClient;
    const signals = [...this.signals].map((c) => `SELECT pg_notify(${client.escapeLiteral(c)}, ''); `).join('');
    return `${this.relaxedCommit ? 'SET LOCAL synchronous_commit = off; ' : ''}${signals}COMMIT`;
  }

  private statement(sql: string, params: SqlValue[], options?: QueryOptions): pg.QueryConfig {
    const text = toPg(sql);
    // Without parameters, pg sends the simple protocol, which also runs several statements in one text.
    // An unnamed statement is planned with its values on every execution.
    return params.length && !options?.planEachTime ? { name: this.statementNames.nameOf(text), text, values: params } : { text, values: params };
  }

  async query<T>(sql: string, params: SqlValue[] = [], options?: QueryOptions): Promise<T[]> {
    return (await this.client.query(this.statement(sql, params, options))).rows as T[];
  }

  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    return (await this.client.query(this.statement(sql, params))).rowCount ?? 0;
  }

  async insertRows(table: string, columns: readonly string[], rows: SqlValue[][]): Promise<void> {
    if (rows.length >= COPY_MIN_ROWS && this.inTransaction) {
      await copyRows(this.client as pg.PoolClient, table, columns, rows);
      return;
    }
    const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
    for (let start = 0; start < rows.length; start += perStatement) {
      const params: SqlValue[] = [];
      await this.client.query(insertStatement({ table, columns, rows: rows.slice(start, start + perStatement) }, params), params);
    }
  }

  async insertRowSets(sets: RowSet[]): Promise<void> {
    const nonEmpty = sets.filter((s) => s.rows.length);
    const small = nonEmpty.filter((s) => s.rows.length < COPY_MIN_ROWS);
    const values = small.reduce((n, s) => n + s.rows.length * s.columns.length, 0);
    if (small.length > 1 && values <= MAX_PARAMS) {
      // One statement: each INSERT but the last in a data-modifying CTE (all run, whether or not read).
      const params: SqlValue[] = [];
      const statements = small.map((s) => insertStatement(s, params));
      const last = statements.pop();
      await this.client.query(`WITH ${statements.map((sql, i) => `w${i} AS (${sql})`).join(', ')} ${last}`, params);
      for (const s of nonEmpty.filter((s) => !small.includes(s))) await this.insertRows(s.table, s.columns, s.rows);
      return;
    }
    for (const s of nonEmpty) await this.insertRows(s.table, s.columns, s.rows);
  }

  // Row locks on the schema's lock stripes (lock-stripes.ts), not advisory locks: each advisory lock takes a
  // slot of a lock table sized for 64 per connection, and one import group linking 593 Patients (about
  // 10,000 MPI keys) ran out of it ("out of shared memory"). A row lock lives in the row.
  async lock(...keys: string[]): Promise<void> {
    const stripes = lockStripes(keys);
    if (stripes.length === 1) {
      await this.client.query({ name: 'tessera-lock-1', text: LOCK_ONE_STRIPE, values: stripes });
    } else if (stripes.length > 1) {
      await this.client.query({ name: 'tessera-lock-n', text: LOCK_STRIPES, values: [stripes] });
    }
  }

  async lockSchema(): Promise<void> {
    // Taken before the lock stripes exist; an advisory lock keyed by the schema (stores sharing one database
    // must not wait on each other), one slot for the transaction.
    await this.client.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ' tessera-migrations'))");
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }

  async notify(channel: string): Promise<void> {
    // Delivered by PostgreSQL when the transaction commits (duplicates within it are folded into one): sent with the COMMIT.
    if (this.inTransaction) this.signals.add(this.channelOf(channel));
    else await this.client.query('SELECT pg_notify($1, \'\')', [this.channelOf(channel)]);
  }

  async commitWithoutWaitingForDisk(): Promise<void> {
    // Sent with the COMMIT (commitText): PostgreSQL reads the setting when the transaction commits.
    if (this.inTransaction) this.relaxedCommit = true;
  }
}

export interface PostgresOptions {
  connectionString: string;
  /** A schema to create and use (tests isolate themselves this way); default: the connection's own. */
  schema?: string;
  poolSize?: number;
  /** statement_timeout of every connection, in ms (0 or absent: none). */
  statementTimeoutMs?: number;
}

/**
 * SQLSTATE 22021 (character_not_in_repertoire), 22P05 (untranslatable_character): a value PostgreSQL
 * text cannot hold, such as a NUL character, reached a statement. Requests are checked for them first;
 * this is the backstop that keeps one that got through a client's error rather than a server one.
 */
export function isUnstorableText(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === '22021' || code === '22P05';
}

/** SQLSTATE 57014 query_canceled: what a statement stopped by statement_timeout fails with. */
export function isStatementTimeout(err: unknown): boolean {
  return (err as { code?: string })?.code === '57014';
}

/** Concurrent write transactions for batched work (HL7 intake); measured on this 2-core machine in docs/decisions/0015. */
const WRITERS_AT_ONCE = 4;

/** SQLSTATEs of a transaction ended by other transactions, not by its own work: deadlock, serialization failure. */
const TRANSIENT_CONFLICTS = new Set(['40P01', '40001']);

export class PostgresDatabase implements Database {
  readonly dialect = dialect;
  readonly concurrentWriters: number;
  private readonly pool: pg.Pool;
  private readonly executor: PgExecutor;
  private readonly statementNames = new StatementNames();

  constructor(private readonly options: PostgresOptions) {
    const schema = options.schema;
    const poolSize = options.poolSize ?? 10;
    // Writers at once, keeping part of the pool for reads (HTTP searches) while a load runs.
    this.concurrentWriters = Math.max(1, Math.min(WRITERS_AT_ONCE, poolSize - 2));
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: poolSize,
      types,
      // JIT off: Tessera's queries are short index lookups, and a correlated key-range join gets a default
      // row estimate large enough to cross jit_above_cost; compiling then took ~680 ms of a 30 ms query
      // (Patient/$everything at 100k, docs/performance.md).
      // statement_timeout: the server stops a statement that runs too long (and one whose client went
      // away: without it, a query ran on for minutes after the Tessera process had died).
      options: ['-c jit=off', schema ? `-c search_path=${schema}` : '', options.statementTimeoutMs ? `-c statement_timeout=${Math.floor(options.statementTimeoutMs)}` : '']
        .join(' ')
        .trim(),
    });
    this.executor = new PgExecutor(this.pool, this.statementNames, this.channelOf);
  }

  async init(): Promise<void> {
    if (this.options.schema) {
      if (!/^[a-z_][a-z0-9_]*$/.test(this.options.schema)) {
        throw new Error(`Invalid schema name: ${this.options.schema}`);
      }
      await this.pool.query(`CREATE SCHEMA IF NOT EXISTS ${this.options.schema}`);
    }
  }

  query<T>(sql: string, params?: SqlValue[], options?: QueryOptions): Promise<T[]> {
    return this.executor.query<T>(sql, params, options);
  }

  run(sql: string, params?: SqlValue[]): Promise<number> {
    return this.executor.run(sql, params);
  }

  insertRows(table: string, columns: readonly string[], rows: SqlValue[][]): Promise<void> {
    return this.transaction((tx) => tx.insertRows(table, columns, rows));
  }

  insertRowSets(sets: RowSet[]): Promise<void> {
    return this.transaction((tx) => tx.insertRowSets(sets));
  }

  async lock(): Promise<void> {
    throw new Error('lock() needs a transaction');
  }

  async lockSchema(): Promise<void> {
    throw new Error('lockSchema() needs a transaction');
  }

  notify(channel: string): Promise<void> {
    return this.executor.notify(channel);
  }

  async commitWithoutWaitingForDisk(): Promise<void> {}

  listen(channel: string, fn: () => void): Promise<() => Promise<void>> {
    return listenOn(this.options.connectionString, this.channelOf(channel), fn);
  }

  private readonly channelOf = (channel: string) => channelName(channel, this.options.schema);

  isTransientConflict(err: unknown): boolean {
    return TRANSIENT_CONFLICTS.has((err as { code?: string })?.code ?? '');
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      try {
        const tx = new PgExecutor(client, this.statementNames, this.channelOf, true);
        const result = await fn(tx);
        await client.query(tx.commitText());
        return result;
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    } finally {
      client.release();
    }
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async dropSchema(): Promise<void> {
    if (this.options.schema) {
      await this.pool.query(`DROP SCHEMA IF EXISTS ${this.options.schema} CASCADE`);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
