import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { signatureOf, SIGNATURE_HEADER } from '../../src/notify/rest-hook.js';

/** One notification as a receiver took it: the path it was posted to and its Bundle. */
export interface Received {
  path: string;
  bundle: any;
  signatureValid: boolean;
  /** The request's headers (names in lower case). */
  headers: Record<string, string | string[] | undefined>;
}

/** The event numbers (and focus references) a notification Bundle carries. */
export function eventsOf(bundle: any): { number: number; focus?: string }[] {
  const status = bundle.entry[0].resource;
  return status.parameter
    .filter((p: any) => p.name === 'notification-event')
    .map((p: any) => ({ number: Number(p.part.find((x: any) => x.name === 'event-number').valueString), focus: p.part.find((x: any) => x.name === 'focus')?.valueReference.reference }));
}

export function notificationType(bundle: any): string {
  return bundle.entry[0].resource.parameter.find((p: any) => p.name === 'type').valueCode;
}

/**
 * A subscriber's HTTPS endpoint stand-in (plain HTTP here): a real server on a free port that checks the
 * HMAC-SHA256 signature, records what it receives, and can be taken down (answers 503) and brought back.
 */
export class HttpReceiver {
  readonly received: Received[] = [];
  down = false;
  /** How long it takes to answer, ms (deliveries stay in flight that long). */
  delayMs = 0;
  /** Requests being answered now, per path, and the most there ever were at once (per path, and in all). */
  private readonly inFlight = new Map<string, number>();
  readonly mostInFlight = new Map<string, number>();
  mostInFlightInAll = 0;
  private server?: Server;
  url = '';

  constructor(private readonly secret: string) {}

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => {
      const path = req.url ?? '/';
      const now = (this.inFlight.get(path) ?? 0) + 1;
      this.inFlight.set(path, now);
      this.mostInFlight.set(path, Math.max(now, this.mostInFlight.get(path) ?? 0));
      this.mostInFlightInAll = Math.max(this.mostInFlightInAll, [...this.inFlight.values()].reduce((a, b) => a + b, 0));
      res.on('finish', () => this.inFlight.set(path, (this.inFlight.get(path) ?? 1) - 1));
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        if (this.down) {
          res.writeHead(503).end();
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const answer = () => {
          this.received.push({ path: req.url ?? '/', bundle: JSON.parse(body), signatureValid: req.headers[SIGNATURE_HEADER] === signatureOf(this.secret, body), headers: req.headers });
          res.writeHead(200).end();
        };
        if (this.delayMs) setTimeout(answer, this.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this.url;
  }

  /** Event notifications (not heartbeats or handshakes) posted to `path`. */
  notifications(path: string): Received[] {
    return this.received.filter((r) => r.path === path && notificationType(r.bundle) === 'event-notification');
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A subscriber's interface engine over MLLP: records each message and answers with `answer` (AA, AE, AR). */
export class MllpReceiver {
  readonly messages: string[] = [];
  answer: 'AA' | 'AE' | 'AR' = 'AA';
  private server?: net.Server;
  port = 0;

  async start(): Promise<number> {
    this.server = net.createServer((socket) => {
      let buffer = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (let end = buffer.indexOf(0x1c); end >= 0; end = buffer.indexOf(0x1c)) {
          const text = buffer.subarray(buffer.indexOf(0x0b) + 1, end).toString('utf8');
          buffer = buffer.subarray(end + 2);
          const control = text.split('\r')[0].split('|')[9] ?? '';
          if (this.answer === 'AA') this.messages.push(text);
          const ack = `MSH|^~\\&|PRACTICE|OAK|TESSERA|HIE|20261101||ACK|A${control}|P|2.5.1\rMSA|${this.answer}|${control}${this.answer === 'AA' ? '' : '|interface engine is not taking messages'}`;
          socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(ack), Buffer.from([0x1c, 0x0d])]));
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Polls `check` until it holds (or fails after `ms`). */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
