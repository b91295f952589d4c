import { createHash } from 'node:crypto';
import pg from 'pg';

/** How long a lost LISTEN connection waits before it connects again (meanwhile listeners poll). */
const RECONNECT_MS = 1000;

/**
 * The PostgreSQL channel name of `channel` for one schema: processes sharing a schema hear each other,
 * those of other schemas on the same database (tests, several communities) do not. Within 63 bytes.
 */
export function channelName(channel: string, schema: string | undefined): string {
  return schema ? `${channel}_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}` : channel;
}

/**
 * LISTENs on `name` on a connection of its own (a pooled one would be handed to other work) and calls
 * `fn` for each notification. A lost connection is opened again, and `fn` called once it is back, since
 * signals sent meanwhile were missed. Returns a stop function.
 */
export async function listenOn(connectionString: string, name: string, fn: () => void): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const lost = (c: pg.Client) => {
    if (client !== c) return; // already handled ('error' and 'end' both come)
    client = undefined;
    c.end().catch(() => {});
    if (!stopped) retry = setTimeout(() => void connect().then(fn, () => lost(c)), RECONNECT_MS);
  };
  const connect = async () => {
    const c = new pg.Client({ connectionString });
    client = c;
    c.on('notification', (message) => {
      if (message.channel === name) fn();
    });
    c.on('error', () => lost(c));
    c.on('end', () => lost(c));
    await c.connect();
    await c.query(`LISTEN "${name}"`);
  };
  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const c = client;
    client = undefined;
    await c?.end().catch(() => {});
  };
}
