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
 * `fn` for each notification. A lost connection is opened again (every RECONNECT_MS until it is), and
 * `fn` called once it is back, since signals sent meanwhile were missed. Returns a stop function.
 */
export async function listenOn(connectionString: string, name: string, fn: () => void): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const open = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString });
    c.on('notification', (message) => {
      if (message.channel === name) fn();
    });
    // An error ends the connection; 'end' (below) then opens another.
    c.on('error', () => void c.end().catch(() => {}));
    try {
      await c.connect();
      await c.query(`LISTEN "${name}"`);
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    c.on('end', () => {
      if (client !== c) return; // stopped, or already replaced
      client = undefined;
      reconnect();
    });
    return c;
  };
  const reconnect = () => {
    if (stopped) return;
    retry = setTimeout(async () => {
      try {
        const c = await open();
        if (stopped) await c.end().catch(() => {});
        else {
          client = c;
          fn();
        }
      } catch {
        reconnect();
      }
    }, RECONNECT_MS);
  };
  client = await open();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const c = client;
    client = undefined;
    await c?.end().catch(() => {});
  };
}
