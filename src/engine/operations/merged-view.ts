import type { Encounter, Identifier, Organization, Patient, Resource } from '@medplum/fhirtypes';
import { factProvenance, factResource, mergeRecords, type MergedFact, type SourceRecord } from '../../record/merged-record.js';
import { messageIdOf, participantsOfMessages } from '../../record/source-participants.js';
import type { Repository } from '../../store/repository.js';
import type { FhirRequest } from '../fhir-request.js';
import { reachableRecord, type RecordEntry } from './patient-record.js';

/** The person's merged record as the caller may read it. */
export interface MergedView {
  focal: Patient;
  facts: MergedFact[];
  /** Each fact as a FHIR resource (same order as facts). */
  resources: Resource[];
  /** What the facts reference but that is not a fact (practitioners, organisations...), as readable entries. */
  referenced: RecordEntry[];
}

/**
 * Merges, at read time, the source records of the person the caller may read (decision 0020): the
 * merged view is always consistent with the access policy and with the identity links of the master
 * patient index, and re-derived by construction when a source, a link or a rule changes.
 */
export async function mergedView(repo: Repository, patientId: string, req: FhirRequest): Promise<MergedView> {
  const { focal, patientIds, entries } = await reachableRecord(repo, patientId, req);
  const inCompartment = entries.filter((e) => e.patient !== undefined);
  const resources = inCompartment.map((e) => JSON.parse(e.json) as Resource);
  const participants = await participantsOfMessages(repo, resources.map((r) => messageIdOf(r.meta?.source)).filter((m): m is string => !!m));
  const records: SourceRecord[] = resources.map((resource, i) => ({
    resource,
    sourcePatient: inCompartment[i].patient as string,
    participant: participants.get(messageIdOf(resource.meta?.source) ?? ''),
  }));
  // Each source holds its own copy of an organisation: an encounter's serviceProvider is compared by the
  // organisation's identifier (Reference.identifier added from the referenced Organization).
  const organizations = new Map<string, unknown>();
  for (const e of entries) {
    if (e.type === 'Organization' && e.patient === undefined) {
      const identifier = (JSON.parse(e.json) as Organization).identifier?.find((i) => i.system && i.value);
      if (identifier) organizations.set(`Organization/${e.id}`, { system: identifier.system, value: identifier.value });
    }
  }
  for (const { resource } of records) {
    const provider = (resource as Encounter).serviceProvider;
    if (resource.resourceType === 'Encounter' && provider?.reference && !provider.identifier && organizations.has(provider.reference)) {
      provider.identifier = organizations.get(provider.reference) as Identifier;
    }
  }
  const facts = mergeRecords(records);
  const person = new Set(patientIds);
  return {
    focal,
    facts,
    resources: facts.map((f) => factResource(f, person, patientId)),
    referenced: entries.filter((e) => e.patient === undefined),
  };
}

/** The Provenance of every fact, for bundles that carry them beside the facts. */
export const provenanceOf = (view: MergedView): Resource[] => view.facts.map(factProvenance);
