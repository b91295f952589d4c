import { spawn, type ChildProcess } from 'node:child_process';
import type { TesseraConfig } from '../src/server/config.js';

export interface ServerProcess {
  url: string;
  /** Peak resident set size of the server process, read from /proc before it stops (bytes, 0 if unknown). */
  peakRss(): Promise<number>;
  /**
   * CPU time the server process has used so far, in ms (user + system, from /proc; Linux only): all its
   * threads, and its main thread alone. Differences over a series give the CPU per request, which is far
   * less disturbed than latency by other work on a shared machine.
   */
  cpuMs(): Promise<{ total: number; main: number }>;
  /**
   * Resolves once the server has been idle for a moment (at most one CPU tick in IDLE_WINDOW_MS, all
   * threads) or after SETTLE_LIMIT_MS: background work left by a series (the audit writer's commits of
   * its events, checkpoints) is then not charged to the next one.
   */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `tessera serve` on a loaded store in a process of its own, as an operator runs it after
 * `tessera import`: the latency series then measure the server alone, not a server sharing its event loop
 * and heap with the benchmark's loader and HTTP client.
 */
export async function startServerProcess(config: TesseraConfig): Promise<ServerProcess> {
  // BENCH_SERVER_NODE_OPTIONS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the server process.
  const nodeOptions = process.env.BENCH_SERVER_NODE_OPTIONS?.split(' ').filter(Boolean) ?? [];
  const args = [...nodeOptions, 'bin/tessera.js', 'serve', '--port', '0', '--data', config.dataDir];
  if (config.databaseUrl) {
    args.push('--database-url', config.databaseUrl);
  }
  const child = spawn(process.execPath, args, {
    env: { ...process.env, LOG_LEVEL: 'warn', TESSERA_PG_SCHEMA: config.schema ?? '', TESSERA_MLLP_PORT: 'off' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // A bench that fails part-way must not leave the server running (and holding its store) behind it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const url = await listeningUrl(child);
  const server: ServerProcess = {
    url,
    async peakRss() {
      const { readFile } = await import('node:fs/promises');
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) * 1024 : 0;
    },
    async cpuMs() {
      const { readFile } = await import('node:fs/promises');
      const ticks = async (path: string) => {
        const stat = await readFile(path, 'utf8').catch(() => '');
        // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS_PER_SECOND);
      };
      return { total: await ticks(`/proc/${child.pid}/stat`), main: await ticks(`/proc/${child.pid}/task/${child.pid}/stat`) };
    },
    async settled() {
      const until = performance.now() + SETTLE_LIMIT_MS;
      let last = (await server.cpuMs()).total;
      while (performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS));
        const now = (await server.cpuMs()).total;
        if (now - last <= 1000 / CLOCK_TICKS_PER_SECOND) return;
        last = now;
      }
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
  return server;
}

const IDLE_WINDOW_MS = 250;
const SETTLE_LIMIT_MS = 20_000;

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

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
