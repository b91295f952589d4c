import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './paths.js';

/** `tessera serve` as a child process of the test (a real process to SIGKILL), on a store the test chose. */
export class TesseraProcess {
  private child?: ChildProcess;
  url = '';
  stderr = '';

  constructor(private readonly env: Record<string, string>) {}

  async start(): Promise<string> {
    this.child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { env: { ...process.env, LOG_LEVEL: 'warn', TESSERA_MLLP_PORT: 'off', ...this.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tessera serve did not start: ${this.stderr}`)), 60_000);
      this.child?.stderr?.on('data', (chunk) => {
        this.stderr += chunk.toString();
        const m = /listening on (\S+)\/fhir/.exec(this.stderr);
        if (m && !this.url) {
          clearTimeout(timer);
          this.url = m[1];
          resolve(this.url);
        }
      });
      this.child?.on('exit', (code) => {
        if (!this.url) reject(new Error(`tessera serve exited (${code}): ${this.stderr}`));
      });
    });
  }

  /** Kills it as a crash would: no shutdown, no flush. */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}
