import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromEnv, type TesseraConfig } from '../../src/server/config.js';
import { PostgresDatabase } from '../../src/store/postgres.js';

export type Backend = 'sqlite' | 'postgres';

/** Both backends run every suite; TESSERA_TEST_BACKENDS=sqlite narrows it while developing. */
export const BACKENDS: Backend[] = (process.env.TESSERA_TEST_BACKENDS ?? 'sqlite,postgres').split(',') as Backend[];
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let counter = 0;

/** A fresh, isolated store: a temp directory, and for PostgreSQL a schema of its own. */
export function testConfig(backend: Backend): { config: TesseraConfig; cleanup: () => void } {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-test-'));
  const schema = `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const config = configFromEnv({
    dataDir,
    databaseUrl: backend === 'postgres' ? TEST_DATABASE_URL : '',
    schema: backend === 'postgres' ? schema : undefined,
    logLevel: 'silent',
    port: 0,
  });
  return { config, cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

/** Drops the PostgreSQL schema a test store used (no-op for SQLite), so test runs leave nothing behind. */
export async function dropTestSchema(config: TesseraConfig): Promise<void> {
  if (config.schema && config.databaseUrl) {
    const pg = new PostgresDatabase({ connectionString: config.databaseUrl });
    await pg.exec(`DROP SCHEMA IF EXISTS ${config.schema} CASCADE`);
    await pg.close();
  }
}
