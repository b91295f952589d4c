import type { Bundle } from '@medplum/fhirtypes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_GROUP_RESOURCES as GROUP_RESOURCES } from '../src/ingest/bundle-group-writer.js';
import { prepareCreateOnlyTransaction, type PreparedResource } from '../src/ingest/prepared-bundle.js';
import { INDEX_KINDS, INDEX_TABLES, rowIdBase } from '../src/store/index-writer.js';
import { migrate } from '../src/store/schema.js';
import { openRawWriter, SqliteDatabase } from '../src/store/sqlite.js';

/**
 * The ceiling: the rows Tessera writes for the same Bundles (current row and index rows with their keys, computed
 * by the same preparation function as Tessera's bulk path), inserted straight into the same SQLite
 * schema with the same settings and prepared statements, grouped per transaction as Tessera's bulk loads
 * are. It streams the whole load, so the ceiling grows with the database exactly as Tessera's run did;
 * only the inserts and commits are timed, never the preparation of the rows.
 */
export async function rawSqliteCeiling(bundles: Iterable<Bundle>, target: number): Promise<{ resources: number; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-raw-'));
  const file = join(dir, 'raw.db');
  const schemaDb = new SqliteDatabase(file);
  await migrate(schemaDb);
  await schemaDb.close();

  const raw = openRawWriter(file);
  const db = raw.connection;
  const insertResource = db.prepare("INSERT INTO resource (rk, type, id, version_id, last_updated, deleted, method, content) VALUES (?, ?, ?, 1, ?, 0, 'POST', ?)");
  const insertIndex = Object.fromEntries(
    INDEX_KINDS.map((k) => {
      const { table, columns } = INDEX_TABLES[k];
      return [k, db.prepare(`INSERT INTO ${table} (rid, type, id, ${columns.join(',')}) VALUES (?, ?, ?, ${columns.map(() => '?').join(',')})`)];
    }),
  );
  const insertCompartment = db.prepare('INSERT INTO compartment (rid, patient_id, type, id) VALUES (?, ?, ?, ?)');
  let rk = 0;
  const writeGroup = db.transaction((items: PreparedResource[]) => {
    const now = Date.now();
    for (const r of items) {
      const base = rowIdBase(++rk);
      insertResource.run(rk, r.type, r.id, now, r.content);
      for (const k of INDEX_KINDS) r.rows[k].forEach((row, n) => insertIndex[k].run(base + n, r.type, r.id, ...(row as unknown[])));
      r.rows.compartment.forEach((p, n) => insertCompartment.run(base + n, p, r.type, r.id));
    }
  });

  let resources = 0;
  let seconds = 0;
  let group: PreparedResource[] = [];
  const flush = () => {
    const started = performance.now();
    writeGroup(group);
    seconds += (performance.now() - started) / 1000;
    resources += group.length;
    group = [];
  };
  for (const bundle of bundles) {
    if (resources + group.length >= target) break;
    group.push(...prepareBundle(bundle));
    if (group.length >= GROUP_RESOURCES) flush();
  }
  if (group.length) flush();
  await raw.close();
  rmSync(dir, { recursive: true, force: true });
  return { resources, seconds };
}

/** The rows Tessera's bulk path computes for a Bundle (ids, rewritten references, JSON, index rows). */
function prepareBundle(bundle: Bundle): PreparedResource[] {
  const prepared = prepareCreateOnlyTransaction(bundle);
  if (!prepared) {
    throw new Error('The raw ceiling takes create-only transaction Bundles, as the synthetic community is');
  }
  return prepared.resources;
}
