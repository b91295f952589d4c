import type { CodeableConcept, Coding, Extension, Quantity, Resource } from '@medplum/fhirtypes';
import { codedConcepts, codedQuantities } from './coded-elements.js';
import { isStandardSystem, UCUM } from './standard-systems.js';

/**
 * Marks a coding (or a quantity's unit code) the exchange added from a participant's code map, naming
 * the ConceptMap: what it added is recognisable, so a changed or removed mapping takes it away again
 * while the codings the sender sent are never touched.
 */
export const MAPPED_BY_EXTENSION = 'https://tessera.dev/fhir/StructureDefinition/mapped-by';

/** One standard concept a local code maps to (a row of a participant's ConceptMap). */
export interface MapTarget {
  system: string;
  code: string;
  display?: string;
  conceptMapId: string;
}

/** A local code seen with no standard coding beside it and no mapping: an entry for the worklist. */
export interface UnmappedCode {
  element: string;
  system: string;
  code: string;
  display?: string;
}

/** Local codes of a resource, keyed `system|code` (system '' when the sender named none). */
export function localCodeKeys(resource: Resource): { system: string; code: string }[] {
  const keys: { system: string; code: string }[] = [];
  for (const { concept } of codedConcepts(resource)) {
    for (const c of concept.coding ?? []) if (isLocal(c)) keys.push({ system: c.system ?? '', code: c.code as string });
  }
  for (const { quantity } of codedQuantities(resource)) {
    const unit = localUnit(quantity);
    if (unit) keys.push({ system: '', code: unit });
  }
  return keys;
}

export function codeKey(system: string, code: string): string {
  return `${system}|${code}`;
}

/**
 * Adds to `resource` (in place) the standard codings its local codes map to, after taking away what an
 * earlier mapping added; returns whether anything changed and the local codes that stay unmapped (no
 * standard coding in their element and no mapping). The sender's own codings always stay.
 */
export function applyCodeMaps(resource: Resource, targetsOf: (system: string, code: string) => MapTarget[]): { changed: boolean; unmapped: UnmappedCode[] } {
  let changed = false;
  const unmapped: UnmappedCode[] = [];
  for (const { element, concept } of codedConcepts(resource)) {
    const before = JSON.stringify(concept.coding ?? []);
    const sent = (concept.coding ?? []).filter((c) => !mappedByUs(c));
    const local = sent.filter(isLocal);
    const coding = [...sent];
    for (const l of local) {
      for (const t of targetsOf(l.system ?? '', l.code as string)) {
        if (!coding.some((c) => c.system === t.system && c.code === t.code)) coding.push(mappedCoding(t));
      }
    }
    if (local.length && !coding.some((c) => isStandardSystem(c.system))) {
      local.forEach((l) => unmapped.push({ element, system: l.system ?? '', code: l.code as string, display: l.display ?? concept.text }));
    }
    if (JSON.stringify(coding) !== before) {
      setCoding(concept, coding);
      changed = true;
    }
  }
  for (const { element, quantity, worklist } of codedQuantities(resource)) {
    const before = JSON.stringify(quantity);
    unmapQuantity(quantity);
    const unit = localUnit(quantity);
    if (unit) {
      const target = targetsOf('', unit).find((t) => t.system === UCUM);
      if (target) {
        quantity.system = UCUM;
        quantity.code = target.code;
        quantity.extension = [...(quantity.extension ?? []), mappedBy(target.conceptMapId)];
      } else if (worklist) {
        unmapped.push({ element, system: '', code: unit });
      }
    }
    if (JSON.stringify(quantity) !== before) changed = true;
  }
  return { changed, unmapped };
}

function isLocal(c: Coding): boolean {
  return !!c.code && !isStandardSystem(c.system) && !mappedByUs(c);
}

/**
 * A unit sent as text alone (no code system): HL7 v2 units no UCUM table of ours recognised. A unit code
 * a mapping set still counts as the text it came from, so that the mapping is looked up again.
 */
function localUnit(q: Quantity): string | undefined {
  return q.unit && (mappedByUs(q) || (!q.system && !q.code)) ? q.unit : undefined;
}

function mappedByUs(element: { extension?: Extension[] }): boolean {
  return !!element.extension?.some((e) => e.url === MAPPED_BY_EXTENSION);
}

function mappedBy(conceptMapId: string): Extension {
  return { url: MAPPED_BY_EXTENSION, valueReference: { reference: `ConceptMap/${conceptMapId}` } };
}

function mappedCoding(t: MapTarget): Coding {
  return { extension: [mappedBy(t.conceptMapId)], system: t.system, code: t.code, ...(t.display ? { display: t.display } : {}) };
}

function setCoding(concept: CodeableConcept, coding: Coding[]): void {
  if (coding.length) concept.coding = coding;
  else delete concept.coding;
}

/** Takes back a unit code an earlier mapping set (the unit text the sender sent stays). */
function unmapQuantity(q: Quantity): void {
  if (!mappedByUs(q)) return;
  delete q.system;
  delete q.code;
  const rest = (q.extension ?? []).filter((e) => e.url !== MAPPED_BY_EXTENSION);
  if (rest.length) q.extension = rest;
  else delete q.extension;
}
