import { getSearchParameterDetails, getSearchParameters, type FhirPathAtom } from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../fhir/definitions.js';

export type ParamType = 'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'special';

/** A search parameter compiled for one resource type: its FHIRPath narrowed to that type and parsed once. */
export interface CompiledParam {
  code: string;
  type: ParamType;
  definition: SearchParameter;
  atom: FhirPathAtom;
  targets: string[];
}

/** Parameters answered from the resource table's own columns, not from index rows. */
export const COLUMN_PARAMS = new Set(['_id', '_lastUpdated']);
/** Medplum-specific extensions of the R4 list that Tessera does not implement. */
const EXCLUDED = new Set(['_compartment']);

const cache = new Map<string, Map<string, CompiledParam>>();
/** All search parameters of a resource type, from the official R4 SearchParameter definitions. */
export function getCompiledParams(resourceType: string): Map<string, CompiledParam> {
  let params = cache.get(resourceType);
  if (params) {
    return params;
  }
  loadFhirDefinitions();
  params = new Map();
  for (const sp of Object.values(getSearchParameters(resourceType) ?? {})) {
    const code = sp.code as string;
    // Composite parameters are not indexed yet (see docs/architecture.md); they are left out, not faked.
    if (EXCLUDED.has(code) || !sp.expression || sp.type === 'composite') {
      continue;
    }
    const compiled: CompiledParam = {
      code,
      type: sp.type as ParamType,
      definition: sp,
      atom: getSearchParameterDetails(resourceType, sp).parsedExpression,
      targets: (sp.target ?? []) as string[],
    };
    params.set(code, compiled);
  }
  cache.set(resourceType, params);
  return params;
}

export function getCompiledParam(resourceType: string, code: string): CompiledParam | undefined {
  return getCompiledParams(resourceType).get(code);
}
