import { toTypedValue } from '@medplum/core';
import type { Bundle, Reference, Resource } from '@medplum/fhirtypes';
import type { FhirResponse } from '../engine/fhir-request.js';
import { patientCompartmentParams, securityContextPatient } from '../search/compartment.js';
import { getCompiledParam } from '../search/parameters.js';
import { mergedFactSources } from '../record/merged-record.js';

/**
 * What an interaction touched: the resources returned or changed (references `Type/id`) and, for each
 * patient concerned, how many resources of each type of theirs it touched (the "saw what" of the
 * accounting of disclosures).
 */
export interface AuditSubjects {
  resources: string[];
  /** Patient id -> resource type -> count. */
  patients: Map<string, Map<string, number>>;
  /**
   * When set: of `resources`, those in no patient's compartment here. Only these get a search key of
   * their own in the audit log; the others are found through their patients' keys (audit-search.ts), so a
   * search that returned 20 of a patient's Observations costs one key, not 21. Unset (the producer does
   * not know): every resource gets its key.
   */
  unattached?: string[];
}

/** Ids of the patients whose compartment holds the resource (CompartmentDefinition/patient). */
export function compartmentPatients(resource: Resource): string[] {
  if (resource.resourceType === 'Patient') return resource.id ? [resource.id] : [];
  const contextPatient = securityContextPatient(resource);
  if (contextPatient) return [contextPatient];
  const params = patientCompartmentParams(resource.resourceType);
  if (!params.size) return [];
  const ids = new Set<string>();
  const input = [toTypedValue(resource)];
  for (const code of params) {
    const param = getCompiledParam(resource.resourceType, code);
    if (!param) continue;
    let values;
    try {
      values = param.evaluate(input);
    } catch {
      continue; // A path the data cannot satisfy names no patient (as in the index).
    }
    for (const v of values) {
      const m = /(?:^|\/)Patient\/([^/]+)$/.exec((v.value as Reference | undefined)?.reference ?? '');
      if (m) ids.add(m[1]);
    }
  }
  return [...ids];
}

function addResource(subjects: AuditSubjects, resource: Resource): void {
  if (!resource.id || resource.resourceType === 'OperationOutcome') return;
  const reference = `${resource.resourceType}/${resource.id}`;
  subjects.resources.push(reference);
  const patients = compartmentPatients(resource);
  for (const patient of patients) {
    addPatient(subjects, patient, resource.resourceType);
  }
  if (!patients.length) subjects.unattached?.push(reference);
  // A merged fact of the longitudinal record (src/record) stands for source records: each is disclosed
  // with it, and named with a key of its own (its patient is not known here), so that AuditEvent?entity=
  // on a source record finds reads of the merged view.
  for (const source of mergedFactSources(resource)) addUnattached(subjects, source);
}

/** A resource named without knowing its patients (or having none). */
function addUnattached(subjects: AuditSubjects, reference: string): void {
  subjects.resources.push(reference);
  subjects.unattached?.push(reference);
}

function addPatient(subjects: AuditSubjects, patient: string, type?: string, n = 1): void {
  let counts = subjects.patients.get(patient);
  if (!counts) subjects.patients.set(patient, (counts = new Map()));
  if (type) counts.set(type, (counts.get(type) ?? 0) + n);
}

/** Adds what `more` touched to `into` (resources appended, each patient's counts per type summed). */
export function mergeSubjects(into: AuditSubjects, more: AuditSubjects): void {
  into.resources.push(...more.resources);
  if (into.unattached && more.unattached) into.unattached.push(...more.unattached);
  else into.unattached = undefined;
  for (const [patient, seen] of more.patients) {
    addPatient(into, patient);
    for (const [type, n] of seen) addPatient(into, patient, type, n);
  }
}

/** `Type/id` from a response location (`{base}/Type/id/_history/n`). */
function locationRef(location: string | undefined): string | undefined {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\//.exec(location ?? '');
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/** The entries of a Bundle; an entry that is a Bundle itself (a batch entry's search or $everything) by its entries. */
function addEntries(subjects: AuditSubjects, bundle: Bundle): void {
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.resourceType === 'Bundle') addEntries(subjects, entry.resource as Bundle);
    else if (entry.resource) addResource(subjects, entry.resource);
    else {
      const ref = locationRef(entry.response?.location);
      if (ref) addUnattached(subjects, ref);
    }
  }
}

/**
 * The subjects of an interaction: the resource addressed in the path (even when the request failed: an
 * attempt on a patient's record concerns that patient), and those of the response body, a resource or
 * the entries of a Bundle (searchset, $everything, batch/transaction response, and the Bundles a batch's
 * searches and operations answered in it).
 */
export function subjectsOf(segments: readonly string[], response?: FhirResponse): AuditSubjects {
  const subjects: AuditSubjects = { resources: [], patients: new Map(), unattached: [] };
  const [type, id] = segments;
  const addressed = type && id && !id.startsWith('_') && !id.startsWith('$') ? id : undefined;
  if (addressed && type === 'Patient') addPatient(subjects, addressed);
  let body: Resource | undefined = response?.body;
  if (!body && response?.rawBody) {
    try {
      body = JSON.parse(response.rawBody) as Resource;
    } catch {
      body = undefined;
    }
  }
  if (body?.resourceType === 'Bundle') {
    addEntries(subjects, body as Bundle);
  } else if (body && body.resourceType !== 'OperationOutcome') {
    addResource(subjects, body);
  } else if (addressed) {
    // No resource in the answer (a delete, a failure, Prefer: return=minimal): the one addressed.
    addUnattached(subjects, locationRef(response?.location) ?? `${type}/${addressed}`);
  }
  return subjects;
}
