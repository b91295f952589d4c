import type { ConceptMap, ConceptMapGroup } from '@medplum/fhirtypes';
import { codingSystem } from '../hl7v2/datatypes.js';
import { PARTICIPANT_SYSTEM, type Participant } from '../participants/participants.js';

/** One mapping a steward states: a participant's local code to a standard one. */
export interface CodeMapping {
  sourceSystem: string;
  sourceCode: string;
  targetSystem: string;
  targetCode: string;
  targetDisplay?: string;
}

/** The id of the ConceptMap the CLI keeps a participant's mappings in (any other ConceptMap naming it counts too). */
export function participantConceptMapId(participantId: string): string {
  return `local-codes-${participantId}`;
}

/**
 * A code system as a steward writes it: a URI as it stands, else a name of HL7 table 0396 (LN, SCT,
 * RXNORM, UCUM...) or an HL7 v2 local system name (L, 99LAB) as the HL7 v2 intake names it.
 */
export function systemUri(name: string): string {
  return name.includes(':') ? name : (codingSystem(name) as string);
}

/** The participant's ConceptMap (a new one when it has none yet). */
export function emptyConceptMap(participant: Participant): ConceptMap {
  return {
    resourceType: 'ConceptMap',
    id: participantConceptMapId(participant.id),
    url: `urn:tessera:participant:${participant.id}:local-codes`,
    identifier: { system: PARTICIPANT_SYSTEM, value: participant.id },
    name: 'LocalCodes',
    title: `Local codes of ${participant.name}`,
    status: 'active',
    group: [],
  };
}

/**
 * The map with these mappings stated: a local code mapped again to the same target system replaces its
 * earlier target there (the stored resources then lose the old standard coding and get the new one).
 */
export function withMappings(map: ConceptMap, mappings: CodeMapping[]): ConceptMap {
  const next = structuredClone(map);
  next.group = next.group ?? [];
  for (const m of mappings) {
    let group = next.group.find((g) => (g.source ?? '') === m.sourceSystem && g.target === m.targetSystem);
    if (!group) {
      group = { ...(m.sourceSystem ? { source: m.sourceSystem } : {}), target: m.targetSystem, element: [] } as ConceptMapGroup;
      next.group.push(group);
    }
    const elements = group.element.filter((e) => e.code !== m.sourceCode);
    elements.push({ code: m.sourceCode, target: [{ code: m.targetCode, ...(m.targetDisplay ? { display: m.targetDisplay } : {}), equivalence: 'equivalent' }] });
    group.element = elements;
  }
  return next;
}

/**
 * Mappings from a CSV table: `source_system,source_code,target_system,target_code[,target_display]`, a
 * header line of those names optional, fields quoted as RFC 4180 says. Throws naming the line of a bad row.
 */
export function parseMappingCsv(text: string): CodeMapping[] {
  const rows = csvRows(text);
  const out: CodeMapping[] = [];
  rows.forEach(({ line, fields }, i) => {
    if (fields.every((f) => !f.trim())) return;
    if (i === 0 && fields[0].trim().toLowerCase() === 'source_system') return;
    const [sourceSystem, sourceCode, targetSystem, targetCode, targetDisplay] = fields.map((f) => f.trim());
    if (fields.length < 4 || !sourceCode || !targetSystem || !targetCode) {
      throw new Error(`line ${line}: expected source_system,source_code,target_system,target_code[,target_display]`);
    }
    out.push({ sourceSystem: sourceSystem ? systemUri(sourceSystem) : '', sourceCode, targetSystem: systemUri(targetSystem), targetCode, ...(targetDisplay ? { targetDisplay } : {}) });
  });
  return out;
}

/** RFC 4180 rows with the line each starts on (a quoted field may hold commas, quotes and line breaks). */
function csvRows(text: string): { line: number; fields: string[] }[] {
  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  const body = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (quoted) {
      if (ch === '"' && body[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && body[i + 1] === '\n') i++;
      fields.push(field);
      rows.push({ line: rowLine, fields });
      fields = [];
      field = '';
      rowLine = ++line;
    } else field += ch;
  }
  if (quoted) throw new Error(`line ${rowLine}: a quoted field is not closed`);
  if (field || fields.length) rows.push({ line: rowLine, fields: [...fields, field] });
  return rows;
}
