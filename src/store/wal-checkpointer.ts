import { Worker } from 'node:worker_threads';

/** WAL pages at which the writer would checkpoint itself: a backstop, should the checkpointer thread stop. */
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 100_000;

/**
 * Checkpoints an SQLite database's WAL on a thread of its own (src/store/checkpoint-worker.mjs), so that
 * the writer's commits never stop for one: with `wal_autocheckpoint` the commit that crosses the limit
 * copies the WAL into the database and fsyncs, on the thread that serves requests and acknowledges HL7
 * messages. Measured on the rows of 2,000 HL7 messages replayed a commit per message: 1.56-1.63 ms per
 * commit with this checkpointer against 2.12-2.27 ms with the writer checkpointing itself
 * (docs/decisions/0015).
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(file: string, options: { idleMs?: number; busyMs?: number; restartFrames?: number } = {}) {
    this.worker = new Worker(new URL('./checkpoint-worker.mjs', import.meta.url), {
      // 10,000 frames: the WAL is started over once it passes about 40 MB (it grows on while a restart waits its turn).
      workerData: { file, idleMs: options.idleMs ?? 1000, busyMs: options.busyMs ?? 100, restartFrames: options.restartFrames ?? 10_000 },
    });
    // It must never keep a process alive that has nothing else to do.
    this.worker.unref();
    this.worker.on('message', (m: { error?: string }) => {
      if (m.error) process.emitWarning(`SQLite checkpoint failed: ${m.error}`);
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('error', (err) => process.emitWarning(`SQLite checkpointer stopped: ${err.message}`));
  }

  /** Stops after the checkpoint under way, if any (a pause between checkpoints is cut short). */
  async stop(): Promise<void> {
    this.worker.postMessage('stop');
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
