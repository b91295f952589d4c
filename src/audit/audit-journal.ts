import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from './audit-record.js';

/**
 * The audit log's write-ahead journal. A request's audit record is appended here, one JSON line with one
 * write(2), before the request is answered; the log moves journalled records into the hash-chained
 * tables in the background, many per transaction (audit-log.ts). Once write(2) has returned, the line is
 * in the kernel's page cache, so it survives the process being killed, the same guarantee as the data
 * store's own commits (SQLite WAL with synchronous=NORMAL; PostgreSQL's WAL is fsynced, the journal is
 * not: an operating-system crash can lose its last lines, as it can lose SQLite's last commits).
 *
 * Each flush closes the current file and starts the next, so a file holds exactly the records of one
 * flush: once they are committed (with the file's name as a mark, in the same transaction) the file is
 * removed. A file left behind by a process that died is replayed when the next server starts on the same
 * data directory (`leftoverJournals`), skipping files whose mark says they were committed already.
 *
 * Files are named `{pid}-{start}-{n}.jsonl`: several processes may share a data directory (PostgreSQL),
 * and a file belongs to a dead process when its pid no longer runs.
 */
export class AuditJournal {
  private fd: number | undefined;
  private path: string | undefined;
  private sequence = 0;
  private readonly prefix = `${process.pid}-${Date.now()}`;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Appends one record; when this returns, the record survives the process being killed. */
  append(record: AuditRecord): void {
    if (this.fd === undefined) {
      this.path = join(this.dir, `${this.prefix}-${++this.sequence}.jsonl`);
      this.fd = openSync(this.path, 'a', 0o600);
    }
    writeSync(this.fd, `${recordToJson(record)}\n`);
  }

  /** Closes the current file (if any record went into it) and returns its path; the next append starts a new one. */
  seal(): string | undefined {
    if (this.fd === undefined) return undefined;
    closeSync(this.fd);
    const sealed = this.path;
    this.fd = undefined;
    this.path = undefined;
    return sealed;
  }
}

/** The name a journal file's commit mark carries (its file name: unique per process start and flush). */
export function journalMark(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Journal files in `dir` whose writing process no longer runs, oldest first (by start time, then number). */
export function leftoverJournals(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir)
    .map((name) => ({ name, parts: /^(\d+)-(\d+)-(\d+)\.jsonl$/.exec(name) }))
    .filter((f): f is { name: string; parts: RegExpExecArray } => !!f.parts && !processRuns(Number(f.parts[1])));
  files.sort((a, b) => Number(a.parts[2]) - Number(b.parts[2]) || Number(a.parts[3]) - Number(b.parts[3]));
  return files.map((f) => join(dir, f.name));
}

/** The records of a journal file; a last line cut short (the process killed inside write) is left out. */
export function readJournal(path: string): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      records.push(recordFromJson(line));
    } catch {
      // Only a torn last line can fail to parse: every line is written whole by one write(2).
    }
  }
  return records;
}

export function removeJournal(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function processRuns(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // it runs, as another user
  }
}

/** An audit record as one line of JSON (its patients map as pairs). */
function recordToJson(record: AuditRecord): string {
  return JSON.stringify({ ...record, subjects: { resources: record.subjects.resources, patients: [...record.subjects.patients].map(([id, seen]) => [id, [...seen]]) } });
}

function recordFromJson(line: string): AuditRecord {
  const parsed = JSON.parse(line) as AuditRecord & { subjects: { resources: string[]; patients: [string, [string, number][]][] } };
  return { ...parsed, subjects: { resources: parsed.subjects.resources, patients: new Map(parsed.subjects.patients.map(([id, seen]) => [id, new Map(seen)])) } };
}
