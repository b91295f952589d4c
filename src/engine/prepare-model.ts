import { prepareRequiredBindings } from '../fhir/required-bindings.js';
import { forgetDefinitionFiles, loadFhirDefinitions } from '../fhir/definitions.js';
import { allResourceTypes } from '../fhir/resource-types.js';
import { patientCompartmentTypes } from '../search/compartment.js';
import { getCompiledParams } from '../search/parameters.js';

/**
 * Builds everything derived from the R4 definitions once, at start-up, rather than on the first request
 * of each resource type: the validator's schema, the required-binding tables, the compiled search
 * parameters and the Patient compartment. Each definition file is parsed once, then let go.
 */
export function prepareFhirModel(): void {
  loadFhirDefinitions();
  for (const type of allResourceTypes()) {
    prepareRequiredBindings(type);
    getCompiledParams(type);
  }
  patientCompartmentTypes();
  forgetDefinitionFiles();
}
