import type { ConceptMap } from '@medplum/fhirtypes';
import { MESSAGE_SYSTEM } from '../ingest/message-provenance.js';
import { PARTICIPANT_SYSTEM } from '../participants/participants.js';
import type { SqlExecutor, SqlValue } from '../store/database.js';
import type { Resource } from '@medplum/fhirtypes';
import { codeKey, localCodeKeys, type MapTarget, type UnmappedCode } from './local-code-mapper.js';

/** R4 ConceptMap equivalences that do not make the target a coding of the source concept. */
const NOT_A_MATCH = new Set(['unmatched', 'disjoint']);

export interface CodeMapRow {
  sourceSystem: string;
  sourceCode: string;
  target: Omit<MapTarget, 'conceptMapId'>;
}

/** The participant whose code map a ConceptMap is (identifier `urn:tessera:participant|{id}`), if any. */
export function participantOfConceptMap(map: ConceptMap): string | undefined {
  return map.identifier?.system === PARTICIPANT_SYSTEM && map.identifier.value ? map.identifier.value : undefined;
}

/** The source -> target rows a ConceptMap states (group.source '' when it names none). */
export function conceptMapRows(map: ConceptMap): CodeMapRow[] {
  const rows: CodeMapRow[] = [];
  for (const group of map.group ?? []) {
    if (!group.target) continue;
    for (const element of group.element ?? []) {
      if (!element.code) continue;
      for (const t of element.target ?? []) {
        if (!t.code || NOT_A_MATCH.has(t.equivalence ?? '')) continue;
        rows.push({ sourceSystem: group.source ?? '', sourceCode: element.code, target: { system: group.target, code: t.code, ...(t.display ? { display: t.display } : {}) } });
      }
    }
  }
  return rows;
}

const rowKey = (r: { sourceSystem: string; sourceCode: string; target: { system: string; code: string; display?: string } }) => `${codeKey(r.sourceSystem, r.sourceCode)}>${r.target.system}|${r.target.code}|${r.target.display ?? ''}`;

/**
 * Replaces the lookup rows of one ConceptMap (a new version, or none when it is deleted or no longer a
 * participant's) and returns the local codes whose mapping changed, so what already arrived is redone.
 */
export async function replaceConceptMapRows(sql: SqlExecutor, conceptMapId: string, participantId: string | undefined, rows: CodeMapRow[]): Promise<{ participantId: string; system: string; code: string }[]> {
  const old = await sql.query<{ participant_id: string; source_system: string; source_code: string; target_system: string; target_code: string; target_display: string | null }>(
    'SELECT participant_id, source_system, source_code, target_system, target_code, target_display FROM code_map WHERE concept_map_id = ?',
    [conceptMapId],
  );
  const before = new Map(old.map((r) => [`${r.participant_id}:${rowKey({ sourceSystem: r.source_system, sourceCode: r.source_code, target: { system: r.target_system, code: r.target_code, display: r.target_display ?? undefined } })}`, { participantId: r.participant_id, system: r.source_system, code: r.source_code }]));
  const after = new Map(participantId ? rows.map((r) => [`${participantId}:${rowKey(r)}`, { participantId, system: r.sourceSystem, code: r.sourceCode }]) : []);
  await sql.run('DELETE FROM code_map WHERE concept_map_id = ?', [conceptMapId]);
  if (participantId && rows.length) {
    await sql.insertRowSets([
      {
        table: 'code_map',
        columns: ['concept_map_id', 'participant_id', 'source_system', 'source_code', 'target_system', 'target_code', 'target_display'],
        rows: rows.map((r) => [conceptMapId, participantId, r.sourceSystem, r.sourceCode, r.target.system, r.target.code, r.target.display ?? null]),
      },
    ]);
  }
  const changed = new Map<string, { participantId: string; system: string; code: string }>();
  for (const [k, v] of before) if (!after.has(k)) changed.set(`${v.participantId}:${codeKey(v.system, v.code)}`, v);
  for (const [k, v] of after) if (!before.has(k)) changed.set(`${v.participantId}:${codeKey(v.system, v.code)}`, v);
  return [...changed.values()];
}

/** The map targets of a participant's local codes, keyed `system|code`. */
export async function targetsFor(sql: SqlExecutor, participantId: string, codes: string[]): Promise<Map<string, MapTarget[]>> {
  const out = new Map<string, MapTarget[]>();
  const unique = [...new Set(codes)];
  for (let i = 0; i < unique.length; i += 200) {
    const chunk = unique.slice(i, i + 200);
    const rows = await sql.query<{ concept_map_id: string; source_system: string; source_code: string; target_system: string; target_code: string; target_display: string | null }>(
      `SELECT concept_map_id, source_system, source_code, target_system, target_code, target_display FROM code_map
       WHERE participant_id = ? AND source_code IN (${chunk.map(() => '?').join(',')}) ORDER BY concept_map_id, target_system, target_code`,
      [participantId, ...chunk],
    );
    for (const r of rows) {
      const key = codeKey(r.source_system, r.source_code);
      out.set(key, [...(out.get(key) ?? []), { system: r.target_system, code: r.target_code, ...(r.target_display ? { display: r.target_display } : {}), conceptMapId: r.concept_map_id }]);
    }
  }
  return out;
}

/** The logged message a resource came in (meta.source `urn:tessera:message:{id}`), if it did. */
export function sourceMessageId(source: string | undefined): string | undefined {
  return source?.startsWith(`${MESSAGE_SYSTEM}:`) ? source.slice(MESSAGE_SYSTEM.length + 1) : undefined;
}

/**
 * Whether a write of this resource needs its sender's code map (and worklist): it came in a logged
 * message and carries local codes. Pure, so the bulk loader's workers can tell without the database.
 */
export function needsSendersCodeMap(resource: Resource): boolean {
  return !!sourceMessageId(resource.meta?.source) && localCodeKeys(resource).length > 0;
}

/** A message's sender never changes once known: remembered (bounded) to spare a lookup per write. */
const participantOfMessage = new Map<string, string>();

export async function participantOfSource(sql: SqlExecutor, messageId: string): Promise<string | undefined> {
  const cached = participantOfMessage.get(messageId);
  if (cached) return cached;
  const [row] = await sql.query<{ participant_id: string | null }>('SELECT participant_id FROM message WHERE id = ?', [messageId]);
  if (!row?.participant_id) return undefined;
  if (participantOfMessage.size > 10_000) participantOfMessage.clear();
  participantOfMessage.set(messageId, row.participant_id);
  return row.participant_id;
}

/**
 * Counts local codes that arrived unmapped on the participant's worklist (first and last seen, a
 * sample message). Keys are taken in sorted order, so concurrent batches lock the rows in one order.
 */
export async function recordUnmapped(sql: SqlExecutor, participantId: string, codes: UnmappedCode[], messageId: string | undefined, now = Date.now()): Promise<void> {
  const byKey = new Map<string, { code: UnmappedCode; n: number }>();
  for (const c of codes) {
    const key = codeKey(c.system, c.code);
    const seen = byKey.get(key);
    // A message is one arrival of a code, whichever of its resources carry it (a result's order and report
    // both carry the panel code); without a message, each resource is one.
    if (seen && messageId === undefined) seen.n++;
    else if (!seen) byKey.set(key, { code: c, n: 1 });
  }
  for (const key of [...byKey.keys()].sort()) {
    const { code, n } = byKey.get(key) as { code: UnmappedCode; n: number };
    await sql.run(
      `INSERT INTO unmapped_code (participant_id, system, code, display, element, occurrences, first_seen, last_seen, sample_message)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (participant_id, system, code) DO UPDATE SET occurrences = unmapped_code.occurrences + excluded.occurrences,
         last_seen = excluded.last_seen, display = COALESCE(unmapped_code.display, excluded.display), sample_message = COALESCE(excluded.sample_message, unmapped_code.sample_message)`,
      [participantId, code.system, code.code, code.display ?? null, code.element, n, now, now, messageId ?? null],
    );
  }
}

export interface WorklistEntry {
  participantId: string;
  system: string;
  code: string;
  display?: string;
  element: string;
  occurrences: number;
  firstSeen: string;
  lastSeen: string;
  sampleMessage?: string;
}

/** The worklist: local codes still without a mapping, the most frequent first. */
export async function listUnmapped(sql: SqlExecutor, participantId: string | undefined, limit = 100): Promise<WorklistEntry[]> {
  const params: SqlValue[] = participantId ? [participantId, limit] : [limit];
  const rows = await sql.query<{ participant_id: string; system: string; code: string; display: string | null; element: string; occurrences: number; first_seen: number; last_seen: number; sample_message: string | null }>(
    `SELECT u.* FROM unmapped_code u
     WHERE ${participantId ? 'u.participant_id = ? AND ' : ''}NOT EXISTS (SELECT 1 FROM code_map m WHERE m.participant_id = u.participant_id AND m.source_code = u.code AND m.source_system = u.system)
     ORDER BY u.occurrences DESC, u.system, u.code LIMIT ?`,
    params,
  );
  return rows.map((r) => ({
    participantId: r.participant_id,
    system: r.system,
    code: r.code,
    ...(r.display ? { display: r.display } : {}),
    element: r.element,
    occurrences: Number(r.occurrences),
    firstSeen: new Date(Number(r.first_seen)).toISOString(),
    lastSeen: new Date(Number(r.last_seen)).toISOString(),
    ...(r.sample_message ? { sampleMessage: r.sample_message } : {}),
  }));
}
