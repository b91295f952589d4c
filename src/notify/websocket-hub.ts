import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

/** Where subscribers connect their websocket (the URL `$get-ws-binding-token` returns). */
export const WEBSOCKET_PATH = '/fhir/$subscription-websocket';
const TOKEN_MS = 5 * 60_000;

/**
 * The websocket channel (R4 Subscriptions Backport): a subscriber asks `$get-ws-binding-token` for a
 * short-lived token, connects, and sends `bind-with-token: <token>`; notifications of that subscription
 * then go to every socket bound to it in this process. A notification counts as delivered once written
 * to a bound socket; with none bound here it waits (another process may hold the socket).
 */
export class WebSocketHub {
  private readonly tokens = new Map<string, { subscriptionId: string; expires: number }>();
  private readonly bound = new Map<string, Set<WebSocket>>();
  private readonly wss = new WebSocketServer({ noServer: true });
  /** Sends the handshake when a socket binds (set by the delivery worker). */
  onBound?: (subscriptionId: string, socket: WebSocket) => void;

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== WEBSOCKET_PATH) return;
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
  }

  issueToken(subscriptionId: string): { token: string; expires: number } {
    const now = Date.now();
    for (const [t, v] of this.tokens) if (v.expires < now) this.tokens.delete(t);
    const token = randomBytes(24).toString('base64url');
    const expires = now + TOKEN_MS;
    this.tokens.set(token, { subscriptionId, expires });
    return { token, expires };
  }

  has(subscriptionId: string): boolean {
    return (this.bound.get(subscriptionId)?.size ?? 0) > 0;
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

  private accept(ws: WebSocket): void {
    ws.on('message', (data) => {
      const m = /^bind-with-token:\s*(\S+)/.exec(data.toString());
      const grant = m ? this.tokens.get(m[1]) : undefined;
      if (!grant || grant.expires < Date.now()) {
        ws.send(JSON.stringify({ error: 'unknown or expired binding token' }));
        return;
      }
      this.tokens.delete(m![1]);
      const set = this.bound.get(grant.subscriptionId) ?? new Set();
      set.add(ws);
      this.bound.set(grant.subscriptionId, set);
      ws.on('close', () => set.delete(ws));
      this.onBound?.(grant.subscriptionId, ws);
    });
  }
}
