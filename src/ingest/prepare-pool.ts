import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Bundle } from '@medplum/fhirtypes';
import { decodePrepared, type PrepareReply } from './prepare-protocol.js';
import type { PreparedBundle } from './prepared-bundle.js';

const utf8 = new TextEncoder();

/** One worker per core beyond the main thread's (which writes), at least one. */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/**
 * Worker threads that prepare create-only transaction Bundles (validation, index extraction, JSON) for
 * bulk loads, so that the main thread only writes. Requests go round-robin; each resolves with the
 * prepared Bundle, or undefined when the Bundle must take the ordinary path.
 */
export class PreparePool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, (prepared: PreparedBundle | undefined) => void>();
  private readonly ready: Promise<unknown>;
  /** Resolves when every worker has loaded the R4 model and can take Bundles. */
  readonly started: Promise<void>;
  private seq = 0;
  private next = 0;

  constructor(size: number) {
    const readiness: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./prepare-worker-entry.mjs', import.meta.url));
      readiness.push(new Promise((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', () => resolve());
      }));
      worker.on('message', (reply: PrepareReply | { ready: true }) => {
        if ('seq' in reply) {
          this.waiting.get(reply.seq)?.(decodePrepared(reply.payload));
          this.waiting.delete(reply.seq);
        }
      });
      worker.on('error', (err) => this.failAll(err));
      this.workers.push(worker);
    }
    this.ready = Promise.all(readiness);
    this.started = this.ready.then(() => undefined);
  }

  /** Starts preparing a Bundle on the next worker. */
  async prepare(bundle: Bundle): Promise<PreparedBundle | undefined> {
    await this.ready;
    // TextEncoder gives a buffer of its own (Buffer.from may share Node's pool), so it can be transferred.
    const bytes = utf8.encode(JSON.stringify(bundle));
    const seq = this.seq++;
    const worker = this.workers[this.next++ % this.workers.length];
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve);
      worker.postMessage({ seq, json: bytes }, [bytes.buffer]);
    });
  }

  private failAll(err: Error): void {
    // A crashed worker must not hang a load: its Bundles fall back to the ordinary path.
    for (const resolve of this.waiting.values()) {
      resolve(undefined);
    }
    this.waiting.clear();
    process.emitWarning(`bulk-load worker failed: ${err.message}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
