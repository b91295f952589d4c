/**
 * Writer locks on PostgreSQL (`SqlExecutor.lock`): a key is hashed to one of LOCK_STRIPES rows of the
 * table `lock_stripe`, and the transaction locks those rows FOR UPDATE. Row locks are kept in the rows
 * themselves, so a transaction may hold any number of them: an import group or an HL7 batch linking
 * hundreds of Patients takes thousands of keys (about 15 MPI blocking keys a Patient). Advisory locks, used
 * before, each took a slot of a lock table sized for 64 per connection, and such a transaction failed with
 * "out of shared memory".
 *
 * Two keys of one stripe serialise their writers needlessly; with 65,536 stripes, two single-Patient writes
 * (about 17 keys each) share a stripe about once in 230. Stripes are locked in ascending order within one
 * call, so two calls never wait on each other in a cycle; a transaction's separate calls can (PostgreSQL
 * then ends one of them as a deadlock, which callers run again: retryingConflicts).
 */
export const LOCK_STRIPE_COUNT = 65_536;

/** The stripes of `keys`: distinct, ascending. */
export function lockStripes(keys: readonly string[]): number[] {
  return [...new Set(keys.map(stripeOf))].sort((a, b) => a - b);
}

/** FNV-1a over the key's UTF-16 code units: the same stripe in every process and version. */
function stripeOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % LOCK_STRIPE_COUNT;
}

export const LOCK_ONE_STRIPE = 'SELECT 1 FROM lock_stripe WHERE id = $1 FOR UPDATE';
/** ORDER BY below FOR UPDATE: PostgreSQL locks the rows as they leave the sort, in ascending order. */
export const LOCK_STRIPES = 'SELECT 1 FROM lock_stripe WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE';

/** The table, filled once (a migration of the PostgreSQL schema; SQLite serialises its writers instead). */
export const LOCK_STRIPE_TABLE = `
CREATE TABLE lock_stripe (id INTEGER PRIMARY KEY);
INSERT INTO lock_stripe (id) SELECT generate_series(0, ${LOCK_STRIPE_COUNT - 1});
`;
