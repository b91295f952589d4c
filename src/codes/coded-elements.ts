import type { CodeableConcept, Quantity, Resource } from '@medplum/fhirtypes';

/**
 * The coded elements a participant's local codes are mapped in, by resource type: the test, substance,
 * medication, vaccine, problem or procedure code, and beside it the value codes, interpretations and
 * reactions a sender may code locally too. Paths step through arrays ("component.code" is every
 * component's code); an element that is an array of CodeableConcepts is each of them.
 */
const CONCEPT_ELEMENTS: Record<string, string[]> = {
  Observation: ['code', 'valueCodeableConcept', 'interpretation', 'method', 'bodySite', 'component.code', 'component.valueCodeableConcept', 'component.interpretation'],
  DiagnosticReport: ['code', 'conclusionCode'],
  ServiceRequest: ['code'],
  AllergyIntolerance: ['code', 'reaction.substance', 'reaction.manifestation'],
  Condition: ['code'],
  Procedure: ['code'],
  Immunization: ['vaccineCode'],
  Medication: ['code'],
  MedicationStatement: ['medicationCodeableConcept'],
  MedicationRequest: ['medicationCodeableConcept'],
  MedicationAdministration: ['medicationCodeableConcept'],
  MedicationDispense: ['medicationCodeableConcept'],
};

/**
 * Quantities whose unit may be a sender's own (an HL7 v2 OBX-6 no UCUM table knows). Only the values'
 * units go on the worklist: a reference range repeats its value's unit.
 */
const QUANTITY_ELEMENTS: Record<string, { path: string; worklist: boolean }[]> = {
  Observation: [
    { path: 'valueQuantity', worklist: true },
    { path: 'component.valueQuantity', worklist: true },
    { path: 'referenceRange.low', worklist: false },
    { path: 'referenceRange.high', worklist: false },
  ],
};

export const CODED_TYPES: ReadonlySet<string> = new Set(Object.keys(CONCEPT_ELEMENTS));

export function hasCodedElements(type: string): boolean {
  return CODED_TYPES.has(type);
}

/** Each CodeableConcept of the mapped elements of `resource`, with the element's name (e.g. "Observation.component.code"). */
export function codedConcepts(resource: Resource): { element: string; concept: CodeableConcept }[] {
  const out: { element: string; concept: CodeableConcept }[] = [];
  for (const path of CONCEPT_ELEMENTS[resource.resourceType] ?? []) {
    for (const value of valuesAt(resource, path.split('.'))) {
      if (value && typeof value === 'object' && !Array.isArray(value)) out.push({ element: `${resource.resourceType}.${path}`, concept: value as CodeableConcept });
    }
  }
  return out;
}

/** Each Quantity of the mapped elements of `resource`, and whether an unknown unit there goes on the worklist. */
export function codedQuantities(resource: Resource): { element: string; quantity: Quantity; worklist: boolean }[] {
  const out: { element: string; quantity: Quantity; worklist: boolean }[] = [];
  for (const { path, worklist } of QUANTITY_ELEMENTS[resource.resourceType] ?? []) {
    for (const value of valuesAt(resource, path.split('.'))) {
      if (value && typeof value === 'object' && !Array.isArray(value)) out.push({ element: `${resource.resourceType}.${path}.unit`, quantity: value as Quantity, worklist });
    }
  }
  return out;
}

function valuesAt(node: unknown, steps: string[]): unknown[] {
  if (Array.isArray(node)) return node.flatMap((n) => valuesAt(n, steps));
  if (!steps.length) return [node];
  if (!node || typeof node !== 'object') return [];
  return valuesAt((node as Record<string, unknown>)[steps[0]], steps.slice(1));
}
