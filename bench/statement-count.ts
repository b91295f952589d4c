import pg from 'pg';

/**
 * Counts the statements this thread sends to PostgreSQL (each one a round trip: BEGIN and COMMIT
 * included; a worker thread's, such as the audit writer's, are its own) until `stop`, by statement text
 * (its first 100 characters, whitespace folded). SQLite sends none.
 */
export function countStatements(): { stop(): Map<string, number> } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const counts = new Map<string, number>();
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as string | { text?: string } | undefined;
    const text = typeof first === 'string' ? first : first?.text;
    if (typeof text === 'string') {
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 100);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return original.apply(this, args);
  };
  return {
    stop() {
      proto.query = original;
      return counts;
    },
  };
}

/** The total of a count. */
export function totalOf(counts: Map<string, number>): number {
  return [...counts.values()].reduce((a, b) => a + b, 0);
}
