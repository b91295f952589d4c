import type { SqlExecutor } from '../store/database.js';
import { chainAnchor, chainHash, GENESIS_HASH, type ChainLink } from './audit-chain.js';
import { readArchivedEvents } from './audit-archive.js';
import { storedRecordedAt } from './stored-event.js';

/** One event as stored in the table or an archive file. */
export interface ChainedEvent {
  seq: number;
  recorded_at?: number;
  content: string;
  prev_hash: string;
  hash: string;
}

/** `inserted`: a row numbered at or below the archive anchor, where archiving left none. */
export type ChainProblem = 'edited' | 'removed' | 'reordered' | 'inserted';

export interface VerifyReport {
  /** Events checked in archive files and in the table. */
  archived: number;
  current: number;
  /** The last event checked. */
  head: ChainLink;
  /** The first break found, if any: the walk stops there. */
  problem?: { seq: number; kind: ChainProblem; detail: string };
}

/** How far a moved event is looked for, to tell a reordering from an edit. */
const MOVE_WINDOW = 64;
const PAGE = 2000;

/**
 * Checks the chain one event at a time: each event must follow its predecessor's sequence number, link
 * to its hash, and hash to its stored hash. The first break says which event and what (edited: its content
 * or hash changed; removed: its predecessor is missing; reordered: it hashes correctly only at another place).
 */
export class ChainWalker {
  checked = 0;

  constructor(public last: ChainLink) {}

  next(event: ChainedEvent): VerifyReport['problem'] {
    const { seq } = event;
    if (seq > this.last.seq + 1) {
      return { seq, kind: 'removed', detail: `event(s) ${this.last.seq + 1}${seq - 1 > this.last.seq + 1 ? `-${seq - 1}` : ''} missing before event ${seq}` };
    }
    if (chainHash(event.prev_hash, seq, event.content) !== event.hash) {
      for (let other = Math.max(1, seq - MOVE_WINDOW); other <= seq + MOVE_WINDOW; other++) {
        if (other !== seq && chainHash(event.prev_hash, other, event.content) === event.hash) {
          return { seq, kind: 'reordered', detail: `event ${other} is stored at position ${seq}` };
        }
      }
      return { seq, kind: 'edited', detail: `event ${seq} does not match its hash (content or hash changed)` };
    }
    if (event.prev_hash !== this.last.hash) {
      return { seq, kind: seq <= this.last.seq ? 'reordered' : 'removed', detail: `event ${seq} does not link to event ${this.last.seq} (an event before it was removed, replaced or moved)` };
    }
    if (event.recorded_at !== undefined && event.recorded_at !== storedRecordedAt(event.content)) {
      return { seq, kind: 'edited', detail: `event ${seq}: its recorded_at column differs from the event's time` };
    }
    this.last = { seq, hash: event.hash };
    this.checked += 1;
    return undefined;
  }
}

/**
 * Verifies the audit log: the archive files in `archiveDir` (if given) from their first event, then the
 * table from the archive anchor. Without archives the anchor is taken as the starting point.
 */
export async function verifyAuditLog(sql: SqlExecutor, archiveDir?: string, knownHead?: ChainLink): Promise<VerifyReport> {
  const report = await walkAuditLog(sql, archiveDir, knownHead);
  // The chain alone cannot tell that its newest events were cut off: a head kept elsewhere can.
  if (!report.problem && knownHead && report.head.seq < knownHead.seq) {
    report.problem = { seq: knownHead.seq, kind: 'removed', detail: `the log ends at event ${report.head.seq}, before the known head ${knownHead.seq}` };
  }
  return report;
}

async function walkAuditLog(sql: SqlExecutor, archiveDir: string | undefined, knownHead: ChainLink | undefined): Promise<VerifyReport> {
  const headMismatch = (walker: ChainWalker): VerifyReport['problem'] =>
    knownHead && walker.last.seq === knownHead.seq && walker.last.hash !== knownHead.hash
      ? { seq: knownHead.seq, kind: 'edited', detail: `event ${knownHead.seq} is not the known head (its hash differs): the log was rewritten from there or before` }
      : undefined;
  const anchor = await chainAnchor(sql);
  // Archiving deletes the rows it moves, so the walk from the anchor never reads a row numbered at or
  // below it. One there was written afterwards: by a writer appending from a head it read before the
  // archive (a fork of the chain), or by hand.
  const [stray] = await sql.query<{ seq: number | string }>('SELECT seq FROM audit_event WHERE seq <= ? ORDER BY seq LIMIT 1', [anchor.seq]);
  if (stray) {
    const seq = Number(stray.seq);
    return { archived: 0, current: 0, head: anchor, problem: { seq, kind: 'inserted', detail: `event ${seq} is in the log although events up to ${anchor.seq} were archived: it was written after archiving` } };
  }
  let walker: ChainWalker | undefined;
  let archived = 0;
  if (archiveDir) {
    for await (const event of readArchivedEvents(archiveDir, anchor.seq)) {
      // The oldest archive kept need not start at the genesis: older files may have been disposed of.
      walker ??= new ChainWalker({ seq: event.seq - 1, hash: event.seq === 1 ? GENESIS_HASH : event.prev_hash });
      const problem = walker.next(event) ?? headMismatch(walker);
      if (problem) return { archived: walker.checked, current: 0, head: walker.last, problem };
    }
    archived = walker?.checked ?? 0;
    if (walker && (walker.last.seq !== anchor.seq || walker.last.hash !== anchor.hash)) {
      return { archived, current: 0, head: walker.last, problem: { seq: anchor.seq, kind: 'removed', detail: `the archive ends at event ${walker.last.seq} but the log's anchor is event ${anchor.seq}` } };
    }
  }
  const table = new ChainWalker(walker?.last ?? anchor);
  for (let after = table.last.seq; ; ) {
    const rows = await sql.query<{ seq: number | string; recorded_at: number | string; content: string; prev_hash: string; hash: string }>(
      'SELECT seq, recorded_at, content, prev_hash, hash FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?',
      [after, PAGE],
    );
    for (const row of rows) {
      const problem = table.next({ ...row, seq: Number(row.seq), recorded_at: Number(row.recorded_at) }) ?? headMismatch(table);
      if (problem) return { archived, current: table.checked, head: table.last, problem };
    }
    if (rows.length < PAGE) break;
    after = Number(rows[rows.length - 1].seq);
  }
  return { archived, current: table.checked, head: table.last };
}
