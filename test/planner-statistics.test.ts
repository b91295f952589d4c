import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openDatabase } from '../src/store/open.js';
import { withUnplannedLimits } from '../src/store/sqlite.js';
import { refreshPlannerStatistics } from '../src/store/statistics.js';

/**
 * SQLite statements whose plan depends on a bound value are compiled again on every execution (decision
 * 0032): with value samples in sqlite_stat4, and with `LIMIT ?`. What the store does about it is checked
 * here; what it saves is measured by bench/governance.ts (no timings in tests). Data: an indexed table
 * of skewed synthetic values beside the store's own, so that ANALYZE has samples to write.
 */
describe('SQLite planner statistics without per-execution recompiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-planner-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = { dataDir: dir, databaseUrl: '' };
  const file = join(dir, 'tessera.db');
  const count = (db: BetterSqlite3.Database, table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

  it('refreshing the statistics keeps the row counts (stat1) and drops the value samples (stat4)', async () => {
    const db = await openDatabase(config);
    await db.exec('CREATE TABLE skewed (code TEXT NOT NULL); CREATE INDEX skewed_code ON skewed (code)');
    await db.transaction(async (tx) => {
      // One common code and many rare ones: the skew for which ANALYZE keeps samples.
      for (let i = 0; i < 2000; i++) await tx.run('INSERT INTO skewed (code) VALUES (?)', [i % 10 ? 'common' : `rare-${i}`]);
    });
    await refreshPlannerStatistics(db);
    await db.close();
    const raw = new BetterSqlite3(file, { readonly: true });
    assert.ok(count(raw, 'sqlite_stat1') > 0, 'row counts kept for the planner');
    assert.equal(count(raw, 'sqlite_stat4'), 0, 'no value samples');
    raw.close();
  });

  it('a store analysed with samples before this release loses them when opened', async () => {
    const raw = new BetterSqlite3(file);
    raw.exec('ANALYZE');
    assert.ok(count(raw, 'sqlite_stat4') > 0, 'ANALYZE wrote samples (the library is built with STAT4)');
    raw.close();
    const db = await openDatabase(config);
    await db.close();
    const check = new BetterSqlite3(file, { readonly: true });
    assert.equal(count(check, 'sqlite_stat4'), 0);
    check.close();
  });

  it('a bound LIMIT is an expression the planner does not read; literal limits and other text stay as they are', () => {
    assert.equal(withUnplannedLimits('SELECT id FROM t ORDER BY id LIMIT ? OFFSET ?'), 'SELECT id FROM t ORDER BY id LIMIT (? + 0) OFFSET ?');
    assert.equal(withUnplannedLimits('SELECT 1 FROM t WHERE a = ? LIMIT 1'), 'SELECT 1 FROM t WHERE a = ? LIMIT 1');
    assert.equal(withUnplannedLimits("SELECT 'NOLIMIT ?' FROM t"), "SELECT 'NOLIMIT ?' FROM t");
  });
});
