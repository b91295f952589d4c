import { withoutStatementTimeout, type Database, type Dialect, type SqlExecutor } from './database.js';
import { AUDIT_JOURNAL_MARKS, auditTables } from '../audit/audit-schema.js';
import { LABEL_BITS } from '../labels/label-bits.js';
import { scrubWriteOnlyValues } from '../notify/scrub-write-only-history.js';
import { LOCK_STRIPE_TABLE } from './lock-stripes.js';

/**
 * A migration that rewrites data in code rather than DDL: it runs in transactions of its own (a large
 * store is rewritten in batches, not in the one transaction of the DDL), is recorded once it has
 * finished, and must be idempotent: a process that stops half-way, or a second process starting at the
 * same time, runs it again.
 */
interface DataMigration {
  data(db: Database): Promise<unknown>;
}

type Migration = ((d: Dialect) => string) | DataMigration;

/**
 * Schema migrations, applied in order on start. Each is DDL text for a dialect (or a DataMigration); a
 * migration that has run is recorded in schema_migrations and never runs again. Never edit a released
 * migration: add a new one.
 *
 * Layout (see docs/architecture.md): `resource` holds the current version of each resource as JSON text,
 * `resource_history` the superseded versions, and one narrow table per search-parameter type holds the extracted
 * index values, so a search is a set of indexed lookups joined on (type, id). Lookup indexes end with
 * `id` so that a search reads the matching ids from the index alone, without visiting table rows.
 */
const migrations: Migration[] = [
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
  (d) => resourceKeysAndCurrentVersions(d),
  // Master patient index (docs/matching.md). mpi_source's primary key is the source Patient: a source
  // record belongs to exactly one enterprise identity at any moment, by construction.
  (d) => `
CREATE TABLE mpi_enterprise (
  enterprise_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  merged_into TEXT,
  created_at ${d.bigint} NOT NULL,
  updated_at ${d.bigint} NOT NULL
);
CREATE TABLE mpi_source (
  patient_id TEXT PRIMARY KEY,
  enterprise_id TEXT NOT NULL REFERENCES mpi_enterprise (enterprise_id),
  source_system TEXT,
  source_value TEXT,
  features TEXT NOT NULL,
  linked_by TEXT NOT NULL,
  score ${d.double},
  updated_at ${d.bigint} NOT NULL
);
CREATE INDEX mpi_source_enterprise ON mpi_source (enterprise_id);
CREATE UNIQUE INDEX mpi_source_identifier ON mpi_source (source_system, source_value);
CREATE TABLE mpi_block (key TEXT NOT NULL, patient_id TEXT NOT NULL, PRIMARY KEY (key, patient_id));
CREATE INDEX mpi_block_patient ON mpi_block (patient_id);
CREATE TABLE mpi_pair (
  patient_a TEXT NOT NULL,
  patient_b TEXT NOT NULL,
  status TEXT NOT NULL,
  score ${d.double} NOT NULL,
  detail TEXT NOT NULL,
  created_at ${d.bigint} NOT NULL,
  decided_at ${d.bigint},
  decided_by TEXT,
  reason TEXT,
  PRIMARY KEY (patient_a, patient_b)
);
CREATE INDEX mpi_pair_status ON mpi_pair (status, created_at);
CREATE INDEX mpi_pair_b ON mpi_pair (patient_b);
CREATE TABLE mpi_event (
  seq ${d.name === 'sqlite' ? 'INTEGER PRIMARY KEY' : 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY'},
  at ${d.bigint} NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  enterprise_id TEXT,
  patient_id TEXT,
  reason TEXT,
  detail TEXT
);
CREATE INDEX mpi_event_enterprise ON mpi_event (enterprise_id, seq);
CREATE INDEX mpi_event_patient ON mpi_event (patient_id, seq);
`,
  // Match models trained by `tessera mpi train` (EM over candidate pairs); the newest is used on start.
  (d) => `
CREATE TABLE mpi_model (
  version ${d.name === 'sqlite' ? 'INTEGER PRIMARY KEY' : 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY'},
  created_at ${d.bigint} NOT NULL,
  probabilities TEXT NOT NULL,
  pairs INTEGER NOT NULL,
  match_share ${d.double} NOT NULL,
  iterations INTEGER NOT NULL
);
`,
  // Each source record's full name (canonical first name and surname), so that how common a name is
  // can be counted (src/mpi/name-frequency.ts). NULL until `tessera mpi rebuild` fills older rows.
  () => `
ALTER TABLE mpi_source ADD COLUMN name_key TEXT;
CREATE INDEX mpi_source_name ON mpi_source (name_key);
`,
  // Participants (organisations sending data) and the message log: every inbound message stored raw
  // before it is processed (docs/interfaces.md).
  (d) => `
CREATE TABLE participant (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  organization_id TEXT NOT NULL,
  mrn_system TEXT NOT NULL,
  hl7_facility TEXT,
  hl7_application TEXT,
  client_id TEXT,
  active INTEGER NOT NULL,
  created_at ${d.bigint} NOT NULL
);
CREATE UNIQUE INDEX participant_hl7_sender ON participant (hl7_facility, hl7_application);
CREATE INDEX participant_client ON participant (client_id);
CREATE TABLE message (
  id TEXT PRIMARY KEY,
  participant_id TEXT,
  channel TEXT NOT NULL,
  format TEXT NOT NULL,
  message_type TEXT,
  control_id TEXT,
  digest TEXT,
  status TEXT NOT NULL,
  received_at ${d.bigint} NOT NULL,
  finished_at ${d.bigint},
  attempts INTEGER NOT NULL,
  raw TEXT NOT NULL,
  error TEXT,
  warnings TEXT,
  resources TEXT,
  patient TEXT
);
CREATE INDEX message_status ON message (status, received_at);
CREATE INDEX message_sender ON message (participant_id, received_at);
CREATE INDEX message_control ON message (participant_id, control_id);
CREATE INDEX message_patient ON message (patient, received_at);
`,
  // A trained match model's thresholds (posterior odds turned into scores, src/mpi/match-model.ts);
  // NULL for models trained before them, which use the default thresholds.
  () => `
ALTER TABLE mpi_model ADD COLUMN thresholds TEXT;
`,
  // Reference index rows by URL: only absolute references (canonical URLs, other servers) have one; a
  // relative reference's row has none, and entering those in the index made every write touch one of
  // its pages per search parameter for nothing (docs/decisions/0015). `url = ?` implies NOT NULL, so
  // searches by URL still use it.
  () => `
DROP INDEX sp_reference_url;
CREATE INDEX sp_reference_url ON sp_reference (type, code, url) WHERE url IS NOT NULL;
`,
  // Which kinds of sensitive information (security labels, src/labels) a client or user may read without
  // the patient's consent: holder 'client:{id}' or 'user:{id}', kinds a comma-separated list or '*'.
  (d) => `
CREATE TABLE access_clearance (holder TEXT PRIMARY KEY, kinds TEXT NOT NULL, granted_at ${d.bigint} NOT NULL);
`,
  // Patients' consents as rows the access policy queries (src/consent/consent-rules.ts): one per rule, data
  // kind and patient record (a person's linked records each get theirs). Lists are stored ',A,B,' so that
  // one LIKE tests membership. Break-the-glass grants: a holder's time-limited access to one person.
  (d) => `
CREATE TABLE consent_rule (
  consent_id TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  effect TEXT NOT NULL,
  kind TEXT,
  actors TEXT,
  purposes TEXT,
  actors_except TEXT,
  purposes_except TEXT,
  start_ms ${d.bigint},
  end_ms ${d.bigint}
);
CREATE INDEX consent_rule_patient ON consent_rule (patient_id, effect);
CREATE INDEX consent_rule_consent ON consent_rule (consent_id);
CREATE TABLE btg_grant (
  id TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  patient_records TEXT NOT NULL,
  reason TEXT NOT NULL,
  granted_at ${d.bigint} NOT NULL,
  expires_at ${d.bigint} NOT NULL,
  reviewed_at ${d.bigint},
  reviewed_by TEXT
);
CREATE INDEX btg_grant_holder ON btg_grant (holder, expires_at);
CREATE INDEX btg_grant_review ON btg_grant (reviewed_at, granted_at);
`,
  // The hash-chained audit log (docs/audit.md). On SQLite it lives in a file of its own, audit.db
  // (src/audit/audit-store.ts says why), so this migration creates nothing there.
  (d) => (d.name === 'postgres' ? auditTables(d) : 'SELECT 1'),
  // Sign-in (docs/sign-in.md): the user directory, clients that redirect users (SMART App Launch),
  // authorization codes and refresh tokens (stored only as SHA-256 hashes: they are bearer secrets of
  // high entropy, so a fast hash suffices), and revoked access-token ids until the tokens expire.
  (d) => `
CREATE TABLE app_user (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  role TEXT NOT NULL,
  organization TEXT NOT NULL,
  fhir_user TEXT,
  password_hash TEXT,
  totp_secret TEXT,
  totp_last_step ${d.bigint},
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  locked_until ${d.bigint},
  disabled SMALLINT NOT NULL DEFAULT 0,
  oidc_issuer TEXT,
  oidc_subject TEXT,
  created_at ${d.bigint} NOT NULL
);
CREATE UNIQUE INDEX app_user_email ON app_user (email);
CREATE UNIQUE INDEX app_user_oidc ON app_user (oidc_issuer, oidc_subject);
ALTER TABLE oauth_client ADD COLUMN redirect_uris TEXT;
ALTER TABLE oauth_client ADD COLUMN public_client SMALLINT NOT NULL DEFAULT 0;
CREATE TABLE oauth_code (
  code_hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  grant_json TEXT NOT NULL,
  expires_at ${d.bigint} NOT NULL
);
CREATE TABLE oauth_refresh_token (
  token_hash TEXT PRIMARY KEY,
  family TEXT NOT NULL,
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  grant_json TEXT NOT NULL,
  expires_at ${d.bigint} NOT NULL,
  used_at ${d.bigint}
);
CREATE INDEX oauth_refresh_token_family ON oauth_refresh_token (family);
CREATE TABLE oauth_revoked (id TEXT PRIMARY KEY, expires_at ${d.bigint} NOT NULL);
`,
  // The audit journal's commit marks (src/audit/audit-journal.ts); on SQLite in audit.db.
  (d) => (d.name === 'postgres' ? AUDIT_JOURNAL_MARKS : 'SELECT 1'),
  // The purposes of use a client may declare (src/auth/purpose-of-use.ts); NULL: any.
  () => 'ALTER TABLE oauth_client ADD COLUMN purposes TEXT',
  // The security labels the policy withholds by, as bits of the current row (src/labels/label-bits.ts).
  labelBitsColumn,
  // Participants' local codes (src/codes, decision 0019): code_map is derived from their ConceptMaps
  // (rewritten with each ConceptMap version) for the lookup on every write; unmapped_code is the
  // stewards' worklist of local codes that arrived with no standard coding and no mapping.
  (d) => `
CREATE TABLE code_map (
  concept_map_id TEXT NOT NULL,
  participant_id TEXT NOT NULL,
  source_system TEXT NOT NULL,
  source_code TEXT NOT NULL,
  target_system TEXT NOT NULL,
  target_code TEXT NOT NULL,
  target_display TEXT
);
CREATE INDEX code_map_lookup ON code_map (participant_id, source_code, source_system);
CREATE INDEX code_map_owner ON code_map (concept_map_id);
CREATE TABLE unmapped_code (
  participant_id TEXT NOT NULL,
  system TEXT NOT NULL,
  code TEXT NOT NULL,
  display TEXT,
  element TEXT NOT NULL,
  occurrences ${d.bigint} NOT NULL,
  first_seen ${d.bigint} NOT NULL,
  last_seen ${d.bigint} NOT NULL,
  sample_message TEXT,
  PRIMARY KEY (participant_id, system, code)
);
CREATE INDEX unmapped_code_frequency ON unmapped_code (participant_id, occurrences);
`,
  // Care coordination (src/notify, docs/notifications.md): the outbox written with the data, each
  // subscription's delivery state and numbered deliveries, and roster members by identifier.
  (d) => `
CREATE TABLE notify_event (
  seq ${d.name === 'sqlite' ? 'INTEGER PRIMARY KEY' : 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY'},
  at ${d.bigint} NOT NULL,
  topic TEXT NOT NULL,
  focus_type TEXT NOT NULL,
  focus_id TEXT NOT NULL,
  patient_id TEXT,
  facts TEXT NOT NULL,
  dispatched SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX notify_event_pending ON notify_event (dispatched, seq);
CREATE TABLE notify_subscription (
  id TEXT PRIMARY KEY,
  participant_id TEXT,
  topic TEXT NOT NULL,
  filters TEXT NOT NULL,
  channel_type TEXT NOT NULL,
  endpoint TEXT,
  headers TEXT,
  secret TEXT,
  payload TEXT NOT NULL,
  heartbeat_s INTEGER NOT NULL DEFAULT 0,
  active SMALLINT NOT NULL,
  event_count ${d.bigint} NOT NULL DEFAULT 0,
  last_error TEXT,
  last_sent ${d.bigint} NOT NULL DEFAULT 0,
  next_due ${d.bigint} NOT NULL,
  lease_owner TEXT,
  lease_until ${d.bigint} NOT NULL DEFAULT 0,
  updated_at ${d.bigint} NOT NULL
);
CREATE INDEX notify_subscription_due ON notify_subscription (next_due);
CREATE TABLE notify_delivery (
  subscription_id TEXT NOT NULL,
  event_number ${d.bigint} NOT NULL,
  event_seq ${d.bigint} NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt ${d.bigint} NOT NULL,
  last_error TEXT,
  delivered_at ${d.bigint},
  PRIMARY KEY (subscription_id, event_number)
);
CREATE INDEX notify_delivery_status ON notify_delivery (status, delivered_at);
CREATE INDEX notify_delivery_event ON notify_delivery (event_seq);
CREATE TABLE roster_member (
  group_id TEXT NOT NULL,
  system TEXT,
  value TEXT,
  patient_id TEXT
);
CREATE INDEX roster_member_identifier ON roster_member (value, system);
CREATE INDEX roster_member_patient ON roster_member (patient_id);
CREATE INDEX roster_member_group ON roster_member (group_id);
`,
  // Notifications (docs/decisions/0027): a stamp every Subscription write changes, which writers compare
  // with their cached active topics before writing outbox rows; and the numbers subscribers see, given
  // only to events delivered to them (withheld events are not numbered); websocket binding tokens, which
  // any process on the database can redeem.
  (d) => `
CREATE TABLE notify_state (id INTEGER PRIMARY KEY, subscriptions_stamp TEXT NOT NULL);
INSERT INTO notify_state (id, subscriptions_stamp) VALUES (1, 'initial');
ALTER TABLE notify_subscription ADD COLUMN notified_count ${d.bigint} NOT NULL DEFAULT 0;
ALTER TABLE notify_delivery ADD COLUMN notified_number ${d.bigint};
UPDATE notify_subscription SET notified_count = event_count;
UPDATE notify_delivery SET notified_number = event_number WHERE status <> 'withheld';
CREATE INDEX notify_delivery_notified ON notify_delivery (subscription_id, notified_number);
CREATE TABLE notify_ws_token (token_hash TEXT PRIMARY KEY, subscription_id TEXT NOT NULL, expires_at ${d.bigint} NOT NULL);
`,
  // Local codes whose mapping changed, queued with the ConceptMap write and applied to what already
  // arrived in bounded batches after it (src/codes/backfill.ts, decision 0024); after_rk: the scan's cursor.
  (d) => `
CREATE TABLE code_backfill (
  participant_id TEXT NOT NULL,
  system TEXT NOT NULL,
  code TEXT NOT NULL,
  queued_at ${d.bigint} NOT NULL,
  after_rk ${d.bigint} NOT NULL,
  PRIMARY KEY (participant_id, system, code)
);
`,
  // Notifications (decision 0037): a subscription's pending deliveries in queue order without walking the
  // delivered ones kept for $events (7 days of them), for each delivery round and each lease release.
  () => `
CREATE INDEX notify_delivery_pending ON notify_delivery (subscription_id, event_number) WHERE status = 'pending';
`,
  // Subscription versions stored before channel headers became write-only (decision 0037), or by the bulk
  // path before it took the ordinary one, still carry headers or the signing secret: hidden (decision 0043).
  { data: scrubWriteOnlyValues },
  // Writer locks as row locks on PostgreSQL, any number per transaction (lock-stripes.ts).
  (d) => (d.name === 'postgres' ? LOCK_STRIPE_TABLE : '-- SQLite serialises its writers: no lock stripes'),
];

export const SCHEMA_VERSION = migrations.length;

/** The schema version that hides write-only channel values in stored Subscriptions (a test undoes it). */
export const SCRUB_WRITE_ONLY_VERSION = migrations.findIndex((m) => typeof m !== 'function' && m.data === scrubWriteOnlyValues) + 1;

/**
 * Index rows of one resource occupy the row-id range [rk * 2^20, rk * 2^20 + 2^20): see rowIdBase in
 * index-writer.ts. Fixed by migration 2; changing it would need a migration of every index row.
 */
export const INDEX_ROWS_PER_RESOURCE = 1_048_576;

/** Index tables as migration 2 leaves them: value columns after (rid, type, id), and their lookup indexes. */
const INDEX_TABLES_V2: { table: string; columns: (d: Dialect) => string; indexes: string[] }[] = [
  { table: 'sp_string', columns: () => 'code TEXT NOT NULL, value TEXT NOT NULL, exact TEXT NOT NULL', indexes: ['lookup (type, code, value, id)'] },
  { table: 'sp_token', columns: () => 'code TEXT NOT NULL, system TEXT, value TEXT, text TEXT', indexes: ['lookup (type, code, value, system, id)'] },
  {
    table: 'sp_reference',
    columns: () => 'code TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT',
    indexes: ['lookup (type, code, target_id, target_type, id)', 'target (target_id, target_type)', 'url (type, code, url)'],
  },
  { table: 'sp_date', columns: (d) => `code TEXT NOT NULL, lo ${d.bigint} NOT NULL, hi ${d.bigint} NOT NULL, wide SMALLINT NOT NULL`, indexes: ['lookup (type, code, wide, lo, hi, id)'] },
  { table: 'sp_number', columns: (d) => `code TEXT NOT NULL, value ${d.double} NOT NULL`, indexes: ['lookup (type, code, value, id)'] },
  { table: 'sp_quantity', columns: (d) => `code TEXT NOT NULL, value ${d.double} NOT NULL, system TEXT, unit TEXT`, indexes: ['lookup (type, code, value, id)'] },
  { table: 'sp_uri', columns: () => 'code TEXT NOT NULL, value TEXT NOT NULL', indexes: ['lookup (type, code, value, id)'] },
  {
    table: 'sp_composite',
    columns: (d) => `code TEXT NOT NULL, system TEXT, value TEXT, c2_system TEXT, c2_value TEXT, c2_num ${d.double}, c2_lo ${d.bigint}, c2_hi ${d.bigint}`,
    indexes: ['lookup (type, code, value)'],
  },
  { table: 'compartment', columns: () => 'patient_id TEXT NOT NULL', indexes: ['patient (patient_id, type, id)'] },
];

/**
 * Migration 2 (docs/decisions/0010): a write now touches fewer B-trees.
 * - Every resource gets an integer key `rk`, and its index rows the row ids rk * 2^20 + n, so an update or
 *   delete finds a resource's index rows by a range of the table's own key. This replaces one (type, id)
 *   "owner" index per index table, which cost 30 % of raw insert throughput at 400k resources.
 * - `resource_history` keeps superseded versions only; the current version lives in `resource` alone
 *   (with the method that wrote it), so a create stores its JSON once.
 */
function resourceKeysAndCurrentVersions(d: Dialect): string {
  const sqlite = d.name === 'sqlite';
  const key = sqlite ? 'INTEGER PRIMARY KEY' : 'BIGINT PRIMARY KEY';
  const statements = [
    `CREATE TABLE resource_v2 (
      rk ${key},
      type TEXT NOT NULL,
      id TEXT NOT NULL,
      version_id INTEGER NOT NULL,
      last_updated ${d.bigint} NOT NULL,
      deleted SMALLINT NOT NULL DEFAULT 0,
      method TEXT NOT NULL,
      content TEXT,
      UNIQUE (type, id)
    )`,
    `INSERT INTO resource_v2 (rk, type, id, version_id, last_updated, deleted, method, content)
      SELECT ROW_NUMBER() OVER (ORDER BY r.last_updated, r.type, r.id), r.type, r.id, r.version_id, r.last_updated, r.deleted,
        COALESCE((SELECT h.method FROM resource_history h WHERE h.type = r.type AND h.id = r.id AND h.version_id = r.version_id), 'PUT'),
        r.content
      FROM resource r`,
    `DELETE FROM resource_history WHERE EXISTS (
      SELECT 1 FROM resource r WHERE r.type = resource_history.type AND r.id = resource_history.id AND r.version_id = resource_history.version_id)`,
    'DROP TABLE resource',
    'ALTER TABLE resource_v2 RENAME TO resource',
    'CREATE INDEX resource_type_updated ON resource (type, last_updated)',
    'CREATE INDEX resource_updated ON resource (last_updated)',
  ];
  if (!sqlite) {
    statements.push(
      'CREATE SEQUENCE resource_rk_seq',
      "SELECT setval('resource_rk_seq', (SELECT COALESCE(MAX(rk), 0) + 1 FROM resource), false)",
    );
  }
  for (const { table, columns, indexes } of INDEX_TABLES_V2) {
    const valueColumns = columns(d)
      .split(',')
      .map((c) => c.trim().split(' ')[0]);
    statements.push(
      `CREATE TABLE ${table}_v2 (rid ${key}, type TEXT NOT NULL, id TEXT NOT NULL, ${columns(d)})`,
      `INSERT INTO ${table}_v2 (rid, type, id, ${valueColumns.join(', ')})
        SELECT r.rk * ${INDEX_ROWS_PER_RESOURCE} + ROW_NUMBER() OVER (PARTITION BY t.type, t.id) - 1, t.type, t.id, ${valueColumns.map((c) => `t.${c}`).join(', ')}
        FROM ${table} t JOIN resource r ON r.type = t.type AND r.id = t.id`,
      `DROP TABLE ${table}`,
      `ALTER TABLE ${table}_v2 RENAME TO ${table}`,
      ...indexes.map((index) => `CREATE INDEX ${table}_${index.split(' ')[0]} ON ${table} ${index.slice(index.indexOf(' ') + 1)}`),
    );
  }
  return statements.join(';\n');
}

/** The schema version that added resource.labels (a test undoes it to check its backfill). */
export const LABEL_BITS_VERSION = migrations.indexOf(labelBitsColumn) + 1;

/** Adds resource.labels (with an index of the labelled rows) and computes it from the rows' `_security` index tokens. */
function labelBitsColumn(): string {
  const bits = LABEL_BITS.map(({ system, code, bit }) => `WHEN t.system = '${system}' AND t.value = '${code}' THEN ${bit}`).join(' ');
  return [
    'ALTER TABLE resource ADD COLUMN labels INTEGER NOT NULL DEFAULT 0',
    // The few labelled rows, so that a search's `suppressed` check reads this index instead of every match.
    'CREATE INDEX resource_labelled ON resource (type, id) WHERE labels <> 0',
    `UPDATE resource SET labels = (
       SELECT COALESCE(SUM(DISTINCT CASE ${bits} ELSE 0 END), 0) FROM sp_token t
       WHERE t.rid >= resource.rk * ${INDEX_ROWS_PER_RESOURCE} AND t.rid < resource.rk * ${INDEX_ROWS_PER_RESOURCE} + ${INDEX_ROWS_PER_RESOURCE} AND t.code = '_security')
     WHERE rk IN (SELECT rid / ${INDEX_ROWS_PER_RESOURCE} FROM sp_token WHERE code = '_security')`,
  ].join(';\n');
}

/** Applies the migrations not yet applied, up to `upTo` (default: all). Returns how many ran. */
export async function migrate(db: Database, upTo = migrations.length): Promise<number> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at ${db.dialect.bigint} NOT NULL)`);
  let count = 0;
  for (;;) {
    // The DDL migrations due, in one transaction, up to the first data migration due (if any).
    const { ran, data } = await db.transaction((tx) => applyDdl(tx, db.dialect, upTo));
    count += ran;
    if (data === undefined) return count;
    const migration = migrations[data] as DataMigration;
    await migration.data(db);
    const recorded = await db.transaction(async (tx) => {
      await tx.lockSchema();
      // Another process starting at the same time may have finished it first.
      return tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?) ON CONFLICT (version) DO NOTHING', [data + 1, Date.now()]);
    });
    count += recorded;
  }
}

/** Applies the pending DDL migrations in order until a pending data migration (its index: `data`) or `upTo`. */
async function applyDdl(tx: SqlExecutor, dialect: Dialect, upTo: number): Promise<{ ran: number; data?: number }> {
  await withoutStatementTimeout(tx, dialect);
  await tx.lockSchema();
  const rows = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
  const applied = new Set(rows.map((r) => Number(r.version)));
  let ran = 0;
  for (let i = 0; i < upTo; i++) {
    const version = i + 1;
    if (applied.has(version)) continue;
    const migration = migrations[i];
    if (typeof migration !== 'function') return { ran, data: i };
    await tx.exec(migration(dialect));
    await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [version, Date.now()]);
    ran++;
  }
  return { ran };
}
