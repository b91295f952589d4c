import type { CompartmentDefinition } from '@medplum/fhirtypes';
import { definitionFile } from '../fhir/definitions.js';

/**
 * The Patient compartment (CompartmentDefinition/patient from the R4 specification): which reference
 * parameters of which resource types put a resource into a patient's compartment. Drives $everything and
 * fast "everything about this patient" lookups through the compartment table.
 */
let paramsByType: Map<string, Set<string>> | undefined;

function load(): Map<string, Set<string>> {
  const definition = definitionFile<CompartmentDefinition>('compartmentdefinition-patient.json');
  const map = new Map<string, Set<string>>();
  for (const entry of definition.resource ?? []) {
    if (entry.param?.length) {
      map.set(entry.code as string, new Set(entry.param));
    }
  }
  return map;
}

export function isPatientCompartmentParam(resourceType: string, code: string): boolean {
  paramsByType ??= load();
  return paramsByType.get(resourceType)?.has(code) ?? false;
}

/** Resource types that can be in a patient's compartment (plus Patient itself). */
export function patientCompartmentTypes(): string[] {
  paramsByType ??= load();
  return ['Patient', ...paramsByType.keys()];
}

/** Whether resources of `type` can be in a patient's compartment (Patient itself included). */
export function isPatientCompartmentType(type: string): boolean {
  paramsByType ??= load();
  return type === 'Patient' || paramsByType.has(type);
}

/** The reference parameters that put a resource of this type into a patient's compartment (none: never). */
export function patientCompartmentParams(resourceType: string): ReadonlySet<string> {
  paramsByType ??= load();
  return paramsByType.get(resourceType) ?? new Set();
}
