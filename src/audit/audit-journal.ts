import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { journalEntryOf, recordOfJson, type JournalEntry } from './stored-event.js';

/**
 * The audit log's write-ahead journal. A request's audit record is appended here, one JSON line with one
 * write(2), before the request is answered; the log moves journalled records into the hash-chained
 * tables in the background, many per transaction (audit-log.ts). Once write(2) has returned, the line is
 * in the kernel's page cache, so it survives the process being killed, the same guarantee as the data
 * store's own commits (SQLite WAL with synchronous=NORMAL; PostgreSQL's WAL is fsynced, the journal is
 * not: an operating-system crash can lose its last lines, as it can lose SQLite's last commits).
 *
 * A process appends to one file until it passes ROTATE_BYTES, then starts the next: no file is created
 * or removed on a request's path (a file created per flush made answers wait for the file system's
 * journal commits: read p95 doubled). Each flush takes the bytes written since the last one as a segment;
 * the writer commits a segment's records together with the offset it reached (`audit_journal_mark`), so a
 * file a process left when it died is replayed from that offset by the next server started on the same
 * data directory (`leftoverJournals`), and a file fully committed after rotation is removed.
 *
 * Files are named `{pid}-{start}-{n}.jsonl`: several processes may share a data directory (PostgreSQL),
 * and a file belongs to a dead process when its pid no longer runs.
 */
export class AuditJournal {
  private fd: number | undefined;
  private path: string | undefined;
  /** Bytes in the current file, and where the last segment ended. */
  private written = 0;
  private sealedTo = 0;
  private sequence = 0;
  private readonly prefix = `${process.pid}-${Date.now()}`;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Appends one event; when this returns, it survives the process being killed. */
  append(entry: JournalEntry): void {
    if (this.fd === undefined) {
      this.path = join(this.dir, `${this.prefix}-${++this.sequence}.jsonl`);
      this.fd = openSync(this.path, 'a', 0o600);
      this.written = 0;
      this.sealedTo = 0;
    }
    this.written += writeSync(this.fd, entryLine(entry));
  }

  /**
   * The bytes appended since the last seal, as a segment to commit (undefined: none). A segment that ends
   * a file past ROTATE_BYTES is `last`: the next append starts a new file, and the writer removes this one.
   */
  seal(): JournalSegment | undefined {
    if (this.fd === undefined || this.written === this.sealedTo) return undefined;
    const segment: JournalSegment = { path: this.path as string, from: this.sealedTo, to: this.written, last: this.written >= ROTATE_BYTES };
    this.sealedTo = this.written;
    if (segment.last) this.retire();
    return segment;
  }

  /** Closes the current file and says which it was and how long (its records are for the caller to have committed). */
  close(): { path: string; size: number } | undefined {
    const file = this.path === undefined ? undefined : { path: this.path, size: this.written };
    this.retire();
    return file;
  }

  private retire(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.path = undefined;
  }
}

/** A journal file grows to about this size before the next one is started. */
const ROTATE_BYTES = 16 * 1024 * 1024;

/** A byte range of a journal file: whole lines, as appended between two flushes. */
export interface JournalSegment {
  path: string;
  from: number;
  /** Exclusive; Infinity for recovery: to the end of the file. */
  to: number;
  /** The file is complete: remove it once committed. */
  last: boolean;
}

/** The name a journal file's commit mark carries (its file name: unique per process start and rotation). */
export function journalMark(path: string): string {
  return basename(path);
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

/**
 * The events of a byte range of a journal file, and where the range really ended (the file's end, for a
 * range to Infinity); a last line cut short (the process killed inside write) is left out.
 */
export function readJournal(path: string, from = 0, to = Infinity): { entries: JournalEntry[]; end: number } {
  const fd = openSync(path, 'r');
  let text: string;
  let end: number;
  try {
    end = Math.min(to, fstatSync(fd).size);
    const bytes = Buffer.alloc(Math.max(0, end - from));
    let read = 0;
    while (read < bytes.length) {
      const n = readSync(fd, bytes, read, bytes.length - read, from + read);
      if (n === 0) break;
      read += n;
    }
    text = bytes.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const lines = text.split('\n');
  lines.pop(); // what follows the last newline: nothing, or a line a killed process left unfinished
  const entries: JournalEntry[] = [];
  for (const line of lines) {
    if (!line) continue;
    try {
      entries.push(line.startsWith(ENTRY_TAG) ? entryFromLine(line) : journalEntryOf(recordOfJson(line)));
    } catch {
      // Every line is written whole by one write(2); a line that does not parse is not an event.
    }
  }
  return { entries, end };
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

/**
 * A journal line: `E`, the time recorded, the search keys (JSON) and the stored content (stored-event.ts)
 * exactly as it will be hashed and stored, separated by tabs (JSON escapes any tab inside its strings).
 * The request that journals an event builds it once; the writer thread only splits the line, hashes and
 * inserts (it parsed a record and built and serialised the event again: a third of its time per event).
 */
const ENTRY_TAG = 'E\t';

function entryLine(entry: JournalEntry): string {
  return `${ENTRY_TAG}${entry.recorded}\t${JSON.stringify(entry.keys)}\t${entry.content}\n`;
}

function entryFromLine(line: string): JournalEntry {
  const keysAt = line.indexOf('\t', ENTRY_TAG.length) + 1;
  const contentAt = line.indexOf('\t', keysAt) + 1;
  if (!keysAt || !contentAt) throw new Error('not a journal entry');
  return { recorded: Number(line.slice(ENTRY_TAG.length, keysAt - 1)), keys: JSON.parse(line.slice(keysAt, contentAt - 1)) as JournalEntry['keys'], content: line.slice(contentAt) };
}
