import BetterSqlite3 from 'better-sqlite3';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractIndexRows, type IndexRows } from '../src/search/index-values.js';
import { SQLITE_PRAGMAS, SqliteDatabase } from '../src/store/sqlite.js';
import { migrate } from '../src/store/schema.js';
import { INDEX_KINDS, INDEX_TABLES } from '../src/store/index-writer.js';
import { DEFAULT_GROUP_RESOURCES as GROUP_RESOURCES } from '../src/ingest/bundle-group-writer.js';

/**
 * The ceiling: the same rows Tessera writes for these bundles (current row, history row, index rows),
 * inserted straight into the same SQLite schema with the same settings and prepared statements, grouped
 * per transaction as Tessera's bulk loads group them (GROUP_RESOURCES).
 * Index rows are computed before the clock starts, so this measures only what SQLite itself costs.
 */
export async function rawSqliteCeiling(bundles: Bundle[]): Promise<{ resources: number; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-raw-'));
  const file = join(dir, 'raw.db');
  const schemaDb = new SqliteDatabase(file);
  await migrate(schemaDb);
  await schemaDb.close();

  const prepared: { type: string; id: string; content: string; rows: IndexRows }[][] = bundles.map((b) =>
    (b.entry ?? []).map((e) => {
      const resource = { ...(e.resource as Resource), id: randomUUID(), meta: { versionId: '1', lastUpdated: new Date().toISOString() } };
      return { type: resource.resourceType, id: resource.id, content: JSON.stringify(resource), rows: extractIndexRows(resource) };
    }),
  );
  const db = new BetterSqlite3(file);
  SQLITE_PRAGMAS.forEach((pragma) => db.pragma(pragma));
  const insertResource = db.prepare('INSERT INTO resource (type, id, version_id, last_updated, deleted, content) VALUES (?, ?, 1, ?, 0, ?)');
  const insertHistory = db.prepare("INSERT INTO resource_history (type, id, version_id, last_updated, deleted, method, content) VALUES (?, ?, 1, ?, 0, 'POST', ?)");
  const insertIndex = Object.fromEntries(
    INDEX_KINDS.map((k) => {
      const { table, columns } = INDEX_TABLES[k];
      return [k, db.prepare(`INSERT INTO ${table} (type, id, ${columns.join(',')}) VALUES (?, ?, ${columns.map(() => '?').join(',')})`)];
    }),
  );
  const insertCompartment = db.prepare('INSERT INTO compartment (patient_id, type, id) VALUES (?, ?, ?)');
  const writeGroup = db.transaction((items: (typeof prepared)[number]) => {
    const now = Date.now();
    for (const r of items) {
      insertResource.run(r.type, r.id, now, r.content);
      insertHistory.run(r.type, r.id, now, r.content);
      for (const k of INDEX_KINDS) for (const row of r.rows[k]) insertIndex[k].run(r.type, r.id, ...(row as unknown[]));
      for (const p of r.rows.compartment) insertCompartment.run(p, r.type, r.id);
    }
  });
  const groups: (typeof prepared)[number][] = [[]];
  for (const items of prepared) {
    if (groups[groups.length - 1].length >= GROUP_RESOURCES) groups.push([]);
    groups[groups.length - 1].push(...items);
  }
  const started = performance.now();
  let resources = 0;
  for (const group of groups) {
    writeGroup(group);
    resources += group.length;
  }
  const seconds = (performance.now() - started) / 1000;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { resources, seconds };
}
