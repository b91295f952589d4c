import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Database } from '../store/database.js';
import { CHAIN_LOCK, chainAnchor } from './audit-chain.js';
import type { ChainedEvent } from './audit-verify.js';

/** Events per archive file, and per transaction that removes them: bounds how long appends wait. */
const EVENTS_PER_FILE = 10_000;
const FILE_RE = /^audit-(\d{12})-(\d{12})\.ndjson(\.partial)?$/;

function fileName(first: number, last: number): string {
  return `audit-${String(first).padStart(12, '0')}-${String(last).padStart(12, '0')}.ndjson`;
}

interface ArchiveFile {
  path: string;
  first: number;
  last: number;
  partial: boolean;
}

async function archiveFiles(dir: string): Promise<ArchiveFile[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
  return names
    .map((name) => ({ name, m: FILE_RE.exec(name) }))
    .filter((f): f is { name: string; m: RegExpExecArray } => !!f.m)
    .map(({ name, m }) => ({ path: join(dir, name), first: Number(m[1]), last: Number(m[2]), partial: !!m[3] }))
    .sort((a, b) => a.first - b.first);
}

/**
 * A file is written as `.partial` and renamed once its events are removed from the table: a crash in
 * between leaves a `.partial` file whose events the anchor already covers (keep it) or does not (the
 * removal did not commit: drop it, the events are still in the table).
 */
async function settlePartialFiles(dir: string, anchorSeq: number): Promise<void> {
  for (const file of await archiveFiles(dir)) {
    if (!file.partial) continue;
    if (file.last <= anchorSeq) await rename(file.path, file.path.slice(0, -'.partial'.length));
    else await rm(file.path);
  }
}

/** The archived events in chain order, from the files of `dir` (partial files only when already anchored). */
export async function* readArchivedEvents(dir: string, anchorSeq: number): AsyncGenerator<ChainedEvent> {
  for (const file of await archiveFiles(dir)) {
    if (file.partial && file.last > anchorSeq) continue;
    const lines = createInterface({ input: createReadStream(file.path, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.trim()) continue;
      let event: ChainedEvent;
      try {
        event = JSON.parse(line) as ChainedEvent;
      } catch {
        // An unreadable line counts as an edited event; a placeholder that cannot hash right makes the walk say so.
        event = { seq: -1, content: line, prev_hash: '', hash: '' };
      }
      yield { seq: Number(event.seq), content: String(event.content), prev_hash: String(event.prev_hash), hash: String(event.hash) };
    }
  }
}

export interface ArchiveResult {
  events: number;
  files: string[];
}

/**
 * Moves the events recorded before `before` (epoch ms) to NDJSON files in `dir` (one JSON object per
 * event with its chain fields and its content text exactly as hashed), then removes them from the table
 * and moves the chain anchor to the last one, so that `verify` continues across the boundary.
 */
export async function archiveAuditEvents(db: Database, before: number, dir: string): Promise<ArchiveResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await settlePartialFiles(dir, (await chainAnchor(db)).seq);
  const [{ last }] = await db.query<{ last: number | string | null }>('SELECT MAX(seq) AS last FROM audit_event WHERE recorded_at < ?', [before]);
  const result: ArchiveResult = { events: 0, files: [] };
  if (last === null) return result;
  for (;;) {
    const anchor = await chainAnchor(db);
    if (anchor.seq >= Number(last)) return result;
    const rows = await db.query<{ seq: number | string; recorded_at: number | string; content: string; prev_hash: string; hash: string }>(
      'SELECT seq, recorded_at, content, prev_hash, hash FROM audit_event WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
      [anchor.seq, Number(last), EVENTS_PER_FILE],
    );
    if (!rows.length) return result;
    const first = Number(rows[0].seq);
    const end = Number(rows[rows.length - 1].seq);
    const path = join(dir, fileName(first, end));
    const partial = `${path}.partial`;
    const file = await open(partial, 'w', 0o600);
    try {
      await file.writeFile(rows.map((r) => `${JSON.stringify({ seq: Number(r.seq), recorded_at: Number(r.recorded_at), prev_hash: r.prev_hash, hash: r.hash, content: r.content })}\n`).join(''));
      await file.sync();
    } finally {
      await file.close();
    }
    await db.transaction(async (tx) => {
      await tx.lock(CHAIN_LOCK);
      if ((await chainAnchor(tx)).seq !== anchor.seq) throw new Error('Another archive run moved the anchor; run archive again');
      await tx.run('DELETE FROM audit_ref WHERE seq <= ?', [end]);
      await tx.run('DELETE FROM audit_event WHERE seq <= ?', [end]);
      await tx.run('DELETE FROM audit_anchor WHERE id = 1');
      await tx.run('INSERT INTO audit_anchor (id, seq, hash, archived_at) VALUES (1, ?, ?, ?)', [end, rows[rows.length - 1].hash, Date.now()]);
    });
    await rename(partial, path);
    result.events += rows.length;
    result.files.push(path);
  }
}
