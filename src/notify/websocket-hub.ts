import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SqlExecutor } from '../store/database.js';

/** Where subscribers connect their websocket (the URL `$get-ws-binding-token` returns). */
export const WEBSOCKET_PATH = '/fhir/$subscription-websocket';
const TOKEN_MS = 5 * 60_000;

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * The websocket channel (R4 Subscriptions Backport): a subscriber asks `$get-ws-binding-token` for a
 * short-lived token, connects, and sends `bind-with-token: <token>`; notifications of that subscription
 * then go to every socket bound to it in this process. Tokens are rows of `notify_ws_token` (their
 * SHA-256, not the token), so the process that issues one and the process the subscriber connects to
 * need not be the same: any process on the database redeems it, once. A notification counts as
 * delivered once written to a bound socket; the delivery workers only take a websocket subscription in
 * a process where a socket is bound to it.
 */
export class WebSocketHub {
  private readonly bound = new Map<string, Set<WebSocket>>();
  private readonly wss = new WebSocketServer({ noServer: true });
  /** Sends the handshake when a socket binds (set by the delivery worker). */
  onBound?: (subscriptionId: string, socket: WebSocket) => void;

  constructor(private readonly sql: () => SqlExecutor) {}

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== WEBSOCKET_PATH) return;
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
  }

  /** A binding token for the subscription, redeemable once, within five minutes, by any process. */
  async issueToken(subscriptionId: string): Promise<{ token: string; expires: number }> {
    const now = Date.now();
    await this.sql().run('DELETE FROM notify_ws_token WHERE expires_at < ?', [now]);
    const token = randomBytes(24).toString('base64url');
    const expires = now + TOKEN_MS;
    await this.sql().run('INSERT INTO notify_ws_token (token_hash, subscription_id, expires_at) VALUES (?, ?, ?)', [hashOf(token), subscriptionId, expires]);
    return { token, expires };
  }

  /** The subscriptions with a socket bound in this process. */
  boundSubscriptions(): string[] {
    return [...this.bound].filter(([, sockets]) => sockets.size > 0).map(([id]) => id);
  }

  /** Writes to every socket bound to the subscription; throws when none is (or none took it). */
  async send(subscriptionId: string, text: string): Promise<void> {
    const sockets = [...(this.bound.get(subscriptionId) ?? [])];
    if (!sockets.length) throw new Error('no websocket is bound to this subscription in this process');
    const results = await Promise.allSettled(sockets.map((s) => new Promise<void>((resolve, reject) => s.send(text, (err) => (err ? reject(err) : resolve())))));
    if (!results.some((r) => r.status === 'fulfilled')) throw new Error('no bound websocket took the notification');
  }

  close(): void {
    for (const sockets of this.bound.values()) for (const s of sockets) s.terminate();
    this.wss.close();
  }

  /** The subscription a token binds to, spending it (a token redeemed in two processes at once binds in one). */
  private async redeem(token: string): Promise<string | undefined> {
    const hash = hashOf(token);
    const [row] = await this.sql().query<{ subscription_id: string; expires_at: number }>('SELECT subscription_id, expires_at FROM notify_ws_token WHERE token_hash = ?', [hash]);
    if (!row || Number(row.expires_at) < Date.now()) return undefined;
    return (await this.sql().run('DELETE FROM notify_ws_token WHERE token_hash = ?', [hash])) === 1 ? row.subscription_id : undefined;
  }

  private accept(ws: WebSocket): void {
    ws.on('message', (data) => {
      const m = /^bind-with-token:\s*(\S+)/.exec(data.toString());
      void (m ? this.redeem(m[1]) : Promise.resolve(undefined))
        .catch(() => undefined)
        .then((subscriptionId) => {
          if (!subscriptionId) {
            ws.send(JSON.stringify({ error: 'unknown or expired binding token' }));
            return;
          }
          const set = this.bound.get(subscriptionId) ?? new Set();
          set.add(ws);
          this.bound.set(subscriptionId, set);
          ws.on('close', () => set.delete(ws));
          this.onBound?.(subscriptionId, ws);
        });
    });
  }
}
