import type { CodeSystem, CodeSystemConcept } from '@medplum/fhirtypes';
import { definitionFile } from './definitions.js';

/**
 * Subsumption in the code systems the R4 specification ships (v3 ActCode, RoleCode, ObservationInterpretation,
 * Race, Confidentiality ... 89 of them have a hierarchy), for the token modifiers :below and :above. A
 * hierarchy is read from nested concepts and from the `subsumedBy` / `parent` properties. External
 * terminologies (SNOMED CT, LOINC, RxNorm) are not in the package: searching them by subsumption needs a
 * terminology server, and is refused with a clear message rather than answered wrongly.
 */
interface Hierarchy {
  children: Map<string, Set<string>>;
  parents: Map<string, Set<string>>;
}

let hierarchies: Map<string, Hierarchy> | undefined;

function link(h: Hierarchy, parent: string, child: string): void {
  if (!h.children.has(parent)) h.children.set(parent, new Set());
  if (!h.parents.has(child)) h.parents.set(child, new Set());
  h.children.get(parent)?.add(child);
  h.parents.get(child)?.add(parent);
}

function walk(h: Hierarchy, concepts: CodeSystemConcept[] | undefined, parent?: string): void {
  for (const concept of concepts ?? []) {
    if (!h.parents.has(concept.code)) h.parents.set(concept.code, new Set());
    if (parent) link(h, parent, concept.code);
    for (const property of concept.property ?? []) {
      if ((property.code === 'subsumedBy' || property.code === 'parent') && property.valueCode) {
        link(h, property.valueCode, concept.code);
      }
    }
    walk(h, concept.concept, concept.code);
  }
}

function load(): Map<string, Hierarchy> {
  const out = new Map<string, Hierarchy>();
  for (const file of ['v3-codesystems.json', 'valuesets.json']) {
    for (const entry of definitionFile(file).entry ?? []) {
      const system = entry.resource as CodeSystem | undefined;
      if (system?.resourceType !== 'CodeSystem' || !system.url) continue;
      const h: Hierarchy = { children: new Map(), parents: new Map() };
      walk(h, system.concept);
      if (h.children.size) out.set(system.url, h);
    }
  }
  return out;
}

function closure(start: string, edges: Map<string, Set<string>>): string[] {
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length) {
    for (const next of edges.get(queue.pop() as string) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return [...seen];
}

/**
 * The code and every code it subsumes (`below`) or that subsumes it (`above`), or undefined when no
 * hierarchy of that system is known, or the code is not in it.
 */
export function subsumption(system: string, code: string, direction: 'below' | 'above'): string[] | undefined {
  hierarchies ??= load();
  const h = hierarchies.get(system);
  if (!h || !h.parents.has(code)) {
    return undefined;
  }
  return closure(code, direction === 'below' ? h.children : h.parents);
}
