/**
 * The narrow SQL surface the repository needs. Both backends speak the same SQL text: statements are
 * written with `?` placeholders and only portable constructs (ON CONFLICT, LIMIT/OFFSET, EXISTS, ||);
 * the few real differences are behind `Dialect`.
 */
export type SqlValue = string | number | null;

/** Rows for one table: what `insertRowSets` writes, several tables at a time. */
export interface RowSet {
  table: string;
  columns: readonly string[];
  rows: SqlValue[][];
}

/** How a query is to be run. */
export interface QueryOptions {
  /**
   * Its best plan depends on the values (a search left to the engine's plan: a common code or a rare one):
   * plan it for each execution. PostgreSQL otherwise settles on a generic plan after five executions of a
   * named statement, which can be far worse than the values' plan (a search before its probes were fenced,
   * decision 0046: 13-21 s at 1M against 30 ms).
   */
  planEachTime?: boolean;
}

export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: SqlValue[], options?: QueryOptions): Promise<T[]>;
  run(sql: string, params?: SqlValue[]): Promise<number>;
  /** Inserts many rows into one table, as fast as the driver allows (prepared loop, multi-row VALUES). */
  insertRows(table: string, columns: readonly string[], rows: SqlValue[][]): Promise<void>;
  /**
   * Inserts rows into several tables (a resource and its index rows). PostgreSQL sends the small sets as
   * one statement, so a write costs one round trip rather than one per table.
   */
  insertRowSets(sets: RowSet[]): Promise<void>;
  /**
   * Serialises writers that share a key until the transaction ends (conditional create, MPI). Several
   * keys are taken in one round trip, in an order of the backend's that is the same for every writer, so
   * two calls never wait on each other in a cycle. A transaction may take any number of keys (PostgreSQL:
   * lock-stripes.ts); two keys may share a lock.
   */
  lock(...keys: string[]): Promise<void>;
  /** The schema migrations' lock, which is taken before any table exists. */
  lockSchema(): Promise<void>;
  /** Runs DDL, possibly several statements, without parameters. */
  exec(sql: string): Promise<void>;
  /**
   * Signals `channel` once the transaction commits (at once outside one; not at all if it rolls back):
   * listeners (`Database.listen`) then find what it wrote. Signals of one transaction may be coalesced.
   */
  notify(channel: string): Promise<void>;
  /**
   * Lets the open transaction commit without waiting for its WAL to reach disk (PostgreSQL:
   * synchronous_commit off for it, about 0.4 ms a commit here instead of 3.3 ms; SQLite with
   * synchronous=NORMAL never waits; outside a transaction, nothing). Only for bookkeeping that is redone
   * if a database crash loses it. The WAL is written in order, so any later commit that does wait (one
   * whose effect is seen outside, before anything depends on this one) carries this one to disk first.
   */
  commitWithoutWaitingForDisk(): Promise<void>;
}

export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** Row-lock suffix for a SELECT inside a write transaction ('' where writers are already serialised). */
  readonly forUpdate: string;
  /** Column types in DDL. */
  readonly bigint: string;
  readonly double: string;
  /**
   * SQL true when `column` contains the text bound to the next parameter. Not LIKE: SQLite prepares a
   * statement again whenever a LIKE pattern is a parameter (its plan may depend on the pattern), which cost
   * the access policy's statements 20-70 µs each time they ran.
   */
  contains(column: string): string;
}

export interface Database extends SqlExecutor {
  readonly dialect: Dialect;
  /** Runs `fn` in one atomic transaction; it commits only if `fn` resolves. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** How many write transactions are worth running at once (SQLite has one writer; PostgreSQL many). */
  readonly concurrentWriters: number;
  /**
   * Whether `err` ended a transaction only because of other transactions running at the same time (a
   * deadlock between them): the same work run again in a new transaction can succeed.
   */
  isTransientConflict(err: unknown): boolean;
  /**
   * Calls `fn` after each commit that signalled `channel` (`SqlExecutor.notify`): of any process on the
   * database with PostgreSQL (LISTEN), of this process with SQLite. A hint, not a queue: a signal can be
   * missed (a lost connection), so listeners still look for work now and then. Returns a stop function.
   */
  listen(channel: string, fn: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * Lifts PostgreSQL's per-statement timeout (which guards requests) for the rest of the transaction: a
 * migration's statements rewrite or scan whole tables once, on start.
 */
export async function withoutStatementTimeout(tx: SqlExecutor, dialect: Dialect): Promise<void> {
  if (dialect.name === 'postgres') await tx.exec('SET LOCAL statement_timeout = 0');
}

/** Attempts of a whole transaction that the database ended for a conflict with concurrent ones. */
const CONFLICT_ATTEMPTS = 5;

/**
 * Runs `transaction` (work that begins and commits a transaction of its own) again when the database
 * ended it only because of concurrent transactions (`isTransientConflict`: a deadlock PostgreSQL
 * resolved by ending this one); nothing of the attempt was committed. Other errors, and the last
 * attempt's, are thrown.
 */
export async function retryingConflicts<T>(db: Database, transaction: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (err) {
      if (attempt >= CONFLICT_ATTEMPTS || !db.isTransientConflict(err)) throw err;
    }
  }
}

/** A simple async mutex: JavaScript callers queue in order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    return release;
  }
}
