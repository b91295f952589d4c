import type { CodeableConcept, Coding, Extension, Quantity, Resource } from '@medplum/fhirtypes';
import { codedConcepts, codedQuantities } from './coded-elements.js';
import { isStandardSystem, UCUM } from './standard-systems.js';
import { ORIGINAL_UNIT_EXTENSION, originalUnit, originalUnitExtension } from './original-unit.js';

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
    if (unit) keys.push(unit);
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
      const target = targetsOf(unit.system, unit.code).find((t) => t.system === UCUM);
      if (target) {
        quantity.system = UCUM;
        quantity.code = target.code;
        quantity.extension = [...(quantity.extension ?? []), mappedBy(target.conceptMapId), ...(unit.system ? [originalUnitExtension(unit)] : [])];
      } else if (worklist) {
        unmapped.push({ element, system: unit.system, code: unit.code, ...(unit.system && quantity.unit ? { display: quantity.unit } : {}) });
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
 * The sender's own unit of a quantity, keyed as its code map states it: a unit coded in a system of the
 * sender's (`system|code`), or sent as text alone, no UCUM table of ours recognised (`''|text`). A unit
 * code a mapping set still counts as what it came from, so that the mapping is looked up again.
 */
function localUnit(q: Quantity): { system: string; code: string } | undefined {
  if (mappedByUs(q)) return originalUnit(q) ?? (q.unit ? { system: '', code: q.unit } : undefined);
  if (q.system && q.code) return isStandardSystem(q.system) ? undefined : { system: q.system, code: q.code };
  return q.unit && !q.system && !q.code ? { system: '', code: q.unit } : undefined;
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

/** Takes back a unit code an earlier mapping set: the sender's coded unit (or its text alone) again. */
function unmapQuantity(q: Quantity): void {
  if (!mappedByUs(q)) return;
  const sent = originalUnit(q);
  if (sent) {
    q.system = sent.system;
    q.code = sent.code;
  } else {
    delete q.system;
    delete q.code;
  }
  const rest = (q.extension ?? []).filter((e) => e.url !== MAPPED_BY_EXTENSION && e.url !== ORIGINAL_UNIT_EXTENSION);
  if (rest.length) q.extension = rest;
  else delete q.extension;
}
