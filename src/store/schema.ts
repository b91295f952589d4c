import type { Database, Dialect } from './database.js';

/**
 * Schema migrations, applied in order on start. Each is DDL text for a dialect; a migration that has run is
 * recorded in schema_migrations and never runs again. Never edit a released migration: add a new one.
 *
 * Layout (see docs/architecture.md): `resource` holds the current version of each resource as JSON text,
 * `resource_history` every version, and one narrow table per search-parameter type holds the extracted
 * index values, so a search is a set of indexed lookups joined on (type, id). Lookup indexes end with
 * `id` so that a search reads the matching ids from the index alone, without visiting table rows.
 */
const migrations: ((d: Dialect) => string)[] = [
  (d) => `
CREATE TABLE resource (
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated ${d.bigint} NOT NULL,
  deleted SMALLINT NOT NULL DEFAULT 0,
  content TEXT,
  PRIMARY KEY (type, id)
);
CREATE INDEX resource_type_updated ON resource (type, last_updated);
CREATE TABLE resource_history (
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated ${d.bigint} NOT NULL,
  deleted SMALLINT NOT NULL DEFAULT 0,
  method TEXT NOT NULL,
  content TEXT,
  PRIMARY KEY (type, id, version_id)
);
CREATE INDEX resource_history_updated ON resource_history (last_updated);
CREATE INDEX resource_history_type_updated ON resource_history (type, last_updated);
CREATE TABLE sp_string (type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, value TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX sp_string_lookup ON sp_string (type, code, value, id);
CREATE INDEX sp_string_owner ON sp_string (type, id);
CREATE TABLE sp_token (type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, system TEXT, value TEXT, text TEXT);
CREATE INDEX sp_token_lookup ON sp_token (type, code, value, system, id);
CREATE INDEX sp_token_owner ON sp_token (type, id);
CREATE TABLE sp_reference (type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT);
CREATE INDEX sp_reference_lookup ON sp_reference (type, code, target_id, target_type, id);
CREATE INDEX sp_reference_target ON sp_reference (target_id, target_type);
CREATE INDEX sp_reference_url ON sp_reference (type, code, url);
CREATE INDEX sp_reference_owner ON sp_reference (type, id);
CREATE TABLE sp_date (type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, lo ${d.bigint} NOT NULL, hi ${d.bigint} NOT NULL, wide SMALLINT NOT NULL);
CREATE INDEX sp_date_lookup ON sp_date (type, code, wide, lo, hi, id);
CREATE INDEX sp_date_owner ON sp_date (type, id);
CREATE TABLE sp_number (type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, value ${d.double} NOT NULL);
CREATE INDEX sp_number_lookup ON sp_number (type, code, value, id);
CREATE INDEX sp_number_owner ON sp_number (type, id);
CREATE TABLE sp_quantity (type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, value ${d.double} NOT NULL, system TEXT, unit TEXT);
CREATE INDEX sp_quantity_lookup ON sp_quantity (type, code, value, id);
CREATE INDEX sp_quantity_owner ON sp_quantity (type, id);
CREATE TABLE sp_uri (type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX sp_uri_lookup ON sp_uri (type, code, value, id);
CREATE INDEX sp_uri_owner ON sp_uri (type, id);
CREATE TABLE sp_composite (
  type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, system TEXT, value TEXT,
  c2_system TEXT, c2_value TEXT, c2_num ${d.double}, c2_lo ${d.bigint}, c2_hi ${d.bigint}
);
CREATE INDEX sp_composite_lookup ON sp_composite (type, code, value);
CREATE INDEX sp_composite_owner ON sp_composite (type, id);
CREATE TABLE compartment (patient_id TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL);
CREATE INDEX compartment_patient ON compartment (patient_id, type, id);
CREATE INDEX compartment_owner ON compartment (type, id);
CREATE TABLE oauth_client (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  secret_hash TEXT,
  scope TEXT NOT NULL,
  jwks TEXT,
  created_at ${d.bigint} NOT NULL,
  disabled SMALLINT NOT NULL DEFAULT 0
);
CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`,
];

export const SCHEMA_VERSION = migrations.length;

export async function migrate(db: Database): Promise<number> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at ${db.dialect.bigint} NOT NULL)`);
  return db.transaction(async (tx) => {
    await tx.lock('tessera-migrations');
    const rows = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((r) => Number(r.version)));
    let count = 0;
    for (let i = 0; i < migrations.length; i++) {
      const version = i + 1;
      if (!applied.has(version)) {
        await tx.exec(migrations[i](db.dialect));
        await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [version, Date.now()]);
        count++;
      }
    }
    return count;
  });
}
