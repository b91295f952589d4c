import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromEnv, type TesseraConfig } from '../src/server/config.js';

export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh store for one benchmark run: a temp directory, and for PostgreSQL a schema of its own. */
export function benchConfig(backend: 'sqlite' | 'postgres'): { config: TesseraConfig; cleanup: () => void } {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  const config = configFromEnv({
    dataDir,
    databaseUrl: backend === 'postgres' ? BENCH_DATABASE_URL : '',
    schema: backend === 'postgres' ? `bench_${Date.now().toString(36)}` : undefined,
    logLevel: 'warn',
    port: 0,
  });
  return { config, cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

/** Drops a PostgreSQL benchmark run's schema (benchConfig gives each run its own). */
export async function dropBenchSchema(schema: string): Promise<void> {
  const { PostgresDatabase } = await import('../src/store/postgres.js');
  const pg = new PostgresDatabase({ connectionString: BENCH_DATABASE_URL });
  await pg.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pg.close();
}
