import type { CompartmentDefinition, Resource } from '@medplum/fhirtypes';
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

/**
 * Tessera's one addition to the R4 compartment: a Binary whose securityContext names a Patient is in that
 * patient's compartment. R4 leaves Binary out (it has no search parameters), yet the original of a
 * patient's document is that patient's data: a consent denying an organization must withhold it as it
 * withholds the DocumentReference. Tessera's own Binaries (C-CDA originals) name their patient there; a
 * Binary whose securityContext names another resource is governed by its own labels only.
 */
const BY_SECURITY_CONTEXT = 'Binary';

/** The patient a Binary's securityContext names (see BY_SECURITY_CONTEXT), if any. */
export function securityContextPatient(resource: Resource): string | undefined {
  if (resource.resourceType !== BY_SECURITY_CONTEXT) return undefined;
  return /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(resource.securityContext?.reference ?? '')?.[1];
}

/** Resource types that can be in a patient's compartment (plus Patient itself). */
export function patientCompartmentTypes(): string[] {
  paramsByType ??= load();
  return ['Patient', ...paramsByType.keys(), BY_SECURITY_CONTEXT];
}

/** Whether resources of `type` can be in a patient's compartment (Patient itself included). */
export function isPatientCompartmentType(type: string): boolean {
  paramsByType ??= load();
  return type === 'Patient' || type === BY_SECURITY_CONTEXT || paramsByType.has(type);
}

/** The reference parameters that put a resource of this type into a patient's compartment (none: never). */
export function patientCompartmentParams(resourceType: string): ReadonlySet<string> {
  paramsByType ??= load();
  return paramsByType.get(resourceType) ?? new Set();
}
