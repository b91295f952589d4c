import type { AuditEvent, Bundle, BundleLink } from '@medplum/fhirtypes';
import { badRequest, notFound } from '../fhir/outcome.js';
import { parseDateRange } from '../search/date-range.js';
import { MAX_COUNT } from '../search/search-engine.js';
import type { Database, SqlExecutor, SqlValue } from '../store/database.js';
import { storedAuditEvent } from './stored-event.js';

/** A stored event: its place in the chain and its stored content (stored-event.ts). */
export interface StoredAuditEvent {
  seq: number;
  content: string;
}

/** Search keys (audit_ref.kind) of the AuditEvent search parameters served from the audit table. */
const KEY_KINDS: Record<string, 'p' | 'e' | 'a'> = { patient: 'p', entity: 'e', agent: 'a' };
const DEFAULT_COUNT = 50;

export interface AuditQuery {
  /**
   * Per parameter, the keys any of which an event must have (comma: OR; repeated parameter: AND). For an
   * entity, `owners` are the patients whose compartment the resources were in (entity-owners.ts): an
   * event that named one of them under its patient's key (AuditSubjects.unattached) is found there.
   */
  keys: { kind: 'p' | 'e' | 'a'; refs: string[]; owners?: string[] }[];
  /** recorded_at bounds (epoch ms), all of which hold. */
  dates: { op: '>=' | '>' | '<=' | '<'; ms: number }[];
  count: number;
  offset: number;
}

/** `Type/id` from a reference given as `Type/id`, an absolute URL, or (for patient) a bare id. */
function referenceKey(param: string, value: string): string {
  const parts = value.split('/').filter(Boolean);
  if (parts.length >= 2 && /^[A-Z]/.test(parts[parts.length - 2])) return `${parts[parts.length - 2]}/${parts[parts.length - 1]}`;
  return param === 'patient' ? `Patient/${value}` : value;
}

function dateBounds(value: string): AuditQuery['dates'] {
  const m = /^(eq|ge|gt|le|lt)?(.*)$/.exec(value) as RegExpExecArray;
  const range = parseDateRange(m[2]);
  if (!range) throw badRequest(`Invalid date "${value}"`, 'date');
  switch (m[1] ?? 'eq') {
    case 'ge':
      return [{ op: '>=', ms: range.lo }];
    case 'gt':
      return [{ op: '>', ms: range.hi }];
    case 'le':
      return [{ op: '<=', ms: range.hi }];
    case 'lt':
      return [{ op: '<', ms: range.lo }];
    default:
      return [{ op: '>=', ms: range.lo }, { op: '<=', ms: range.hi }];
  }
}

function nonNegative(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw badRequest(`${name} must be a non-negative integer`, name);
  return n;
}

/** Parses `patient`, `agent`, `entity`, `date`, `_count`, `_offset`; any other parameter is refused (400). */
export function parseAuditQuery(query: URLSearchParams): AuditQuery {
  const parsed: AuditQuery = { keys: [], dates: [], count: DEFAULT_COUNT, offset: 0 };
  for (const [name, value] of query) {
    if (name in KEY_KINDS) {
      parsed.keys.push({ kind: KEY_KINDS[name], refs: value.split(',').filter(Boolean).map((v) => (name === 'agent' && !v.includes('/') ? v : referenceKey(name, v))) });
    } else if (name === 'date') {
      parsed.dates.push(...dateBounds(value));
    } else if (name === '_count') {
      parsed.count = Math.min(nonNegative(name, value), MAX_COUNT);
    } else if (name === '_offset') {
      parsed.offset = nonNegative(name, value);
    } else if (name !== '_format') {
      throw badRequest(`AuditEvent search supports patient, agent, entity, date, _count and _offset, not "${name}"`, name);
    }
  }
  return parsed;
}

/** The events matching a query, newest first (one row more than asked, to tell whether a next page exists). */
export async function findAuditEvents(db: Database, q: AuditQuery): Promise<StoredAuditEvent[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  const list = (values: readonly string[]) => values.map(() => '?').join(',');
  for (const { kind, refs, owners } of q.keys) {
    // An entity that is a patient is keyed as the patient (searchKeys); `p` keys only ever name patients.
    const kinds = kind === 'e' ? ['e', 'p'] : [kind];
    const own = `seq IN (SELECT seq FROM audit_ref WHERE kind IN (${list(kinds)}) AND ref IN (${list(refs)}))`;
    params.push(...kinds, ...refs);
    if (!owners?.length) {
      where.push(own);
      continue;
    }
    // The resource as its patient's event names it: a reference in the event's JSON, in quotes.
    const named = refs.map(() => db.dialect.contains('content')).join(' OR ');
    where.push(`(${own} OR (seq IN (SELECT seq FROM audit_ref WHERE kind = 'p' AND ref IN (${list(owners)})) AND (${named})))`);
    params.push(...owners, ...refs.map((ref) => JSON.stringify(ref)));
  }
  for (const { op, ms } of q.dates) {
    where.push(`recorded_at ${op} ?`);
    params.push(ms);
  }
  const rows = await db.query<{ seq: number | string; content: string }>(
    `SELECT seq, content FROM audit_event ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ? OFFSET ?`,
    [...params, q.count + 1, q.offset],
  );
  return rows.map((r) => ({ seq: Number(r.seq), content: r.content }));
}

/** The AuditEvent as served: its chain position is its id. */
export function auditEventResource(stored: StoredAuditEvent): AuditEvent {
  const event = storedAuditEvent(stored.content);
  return { ...event, id: String(stored.seq), meta: { lastUpdated: event.recorded } };
}

export async function readAuditEvent(sql: SqlExecutor, id: string): Promise<AuditEvent> {
  const seq = /^\d{1,15}$/.test(id) ? Number(id) : undefined;
  const [row] = seq === undefined ? [] : await sql.query<{ content: string }>('SELECT content FROM audit_event WHERE seq = ?', [seq]);
  if (!row) throw notFound(`AuditEvent/${id} is not in the audit log (or has been archived)`);
  return auditEventResource({ seq: seq as number, content: row.content });
}

/** A searchset Bundle of one page of events, with self and next links. */
export function auditSearchBundle(baseUrl: string, query: URLSearchParams, q: AuditQuery, rows: StoredAuditEvent[]): Bundle {
  const page = rows.slice(0, q.count);
  const url = (offset: number): string => {
    const params = new URLSearchParams(query);
    params.set('_count', String(q.count));
    params.set('_offset', String(offset));
    return `${baseUrl}/AuditEvent?${params}`;
  };
  const link: BundleLink[] = [{ relation: 'self', url: url(q.offset) }];
  if (rows.length > q.count) link.push({ relation: 'next', url: url(q.offset + q.count) });
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    link,
    entry: page.map((row) => ({ fullUrl: `${baseUrl}/AuditEvent/${row.seq}`, resource: auditEventResource(row), search: { mode: 'match' } })),
  };
}
