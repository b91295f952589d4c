import { spawn, type ChildProcess } from 'node:child_process';
import type { TesseraConfig } from '../src/server/config.js';

export interface ServerProcess {
  url: string;
  /** Peak resident set size of the server process, read from /proc before it stops (bytes, 0 if unknown). */
  peakRss(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts `tessera serve` on a loaded store in a process of its own, as an operator runs it after
 * `tessera import`: the latency series then measure the server alone, not a server sharing its event loop
 * and heap with the benchmark's loader and HTTP client.
 */
export async function startServerProcess(config: TesseraConfig): Promise<ServerProcess> {
  const args = ['bin/tessera.js', 'serve', '--port', '0', '--data', config.dataDir];
  if (config.databaseUrl) {
    args.push('--database-url', config.databaseUrl);
  }
  const child = spawn(process.execPath, args, {
    env: { ...process.env, LOG_LEVEL: 'warn', TESSERA_PG_SCHEMA: config.schema ?? '', TESSERA_MLLP_PORT: 'off' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = await listeningUrl(child);
  return {
    url,
    async peakRss() {
      const { readFile } = await import('node:fs/promises');
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) * 1024 : 0;
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      const m = /listening on (http:\/\/[^\s/]+:\d+)\/fhir/.exec(stderr);
      if (m) {
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`tessera serve exited with ${code}: ${stderr}`)));
  });
}
