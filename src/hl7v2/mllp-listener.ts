import net from 'node:net';
import tls from 'node:tls';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;
/** Largest message accepted on a connection; a frame that grows past it closes the connection. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface MllpOptions {
  port: number;
  host: string;
  /** PEM certificate and key: the listener speaks MLLP over TLS. */
  tls?: { cert: string; key: string };
}

/**
 * Handles one message's bytes (decoded by the intake, whose MSH-18 names their character set) and which
 * connection it came on, and returns the acknowledgement to send back.
 */
export type MessageHandler = (bytes: Buffer, connection: string) => Promise<string>;

/**
 * The MLLP (Minimal Lower Layer Protocol) listener: each message arrives framed as VT text FS CR and
 * its acknowledgement goes back framed the same way. Messages on one connection are handled one after
 * the other, in order (an ADT feed's order matters); connections run concurrently. Stopping closes the
 * listener and waits for the messages being handled, so none is left stored but unacknowledged.
 */
export class MllpListener {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly inFlight = new Set<Promise<void>>();
  private connections = 0;

  constructor(private readonly handler: MessageHandler) {}

  async start(options: MllpOptions): Promise<number> {
    const onConnection = (socket: net.Socket) => this.accept(socket);
    this.server = options.tls ? tls.createServer({ cert: options.tls.cert, key: options.tls.key }, onConnection) : net.createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(options.port, options.host, () => resolve());
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await Promise.allSettled([...this.inFlight]);
    for (const socket of this.sockets) socket.end();
    await closed;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    const connection = `mllp:${++this.connections}`;
    let buffer: Buffer = Buffer.alloc(0);
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
      for (;;) {
        const start = buffer.indexOf(VT);
        if (start < 0) {
          buffer = Buffer.alloc(0); // bytes outside a frame: nothing to keep
          return;
        }
        const end = buffer.indexOf(FS, start + 1);
        if (end < 0) {
          if (buffer.length - start > MAX_FRAME_BYTES) socket.destroy();
          buffer = start ? buffer.subarray(start) : buffer;
          return;
        }
        const bytes = Buffer.from(buffer.subarray(start + 1, end));
        buffer = buffer.subarray(buffer[end + 1] === CR ? end + 2 : end + 1);
        const work = queue.then(async () => {
          const ack = await this.handler(bytes, connection);
          if (!socket.destroyed) socket.write(Buffer.concat([Buffer.from([VT]), Buffer.from(ack, 'utf8'), Buffer.from([FS, CR])]));
        });
        queue = work.catch(() => undefined);
        const tracked = queue.finally(() => this.inFlight.delete(tracked));
        this.inFlight.add(tracked);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }
}
