/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Resource } from './fhir.js';

/**
 * Reading the merged record (`Patient/{id}/$merged-record`, docs/record.md): each fact once, with an
 * extension per source record (its reference, and the participant that sent it as display) and one per
 * conflict between the sources (kind and detail).
 */
const SOURCE = 'https://tessera.dev/fhir/StructureDefinition/merged-source';
const CONFLICT = 'https://tessera.dev/fhir/StructureDefinition/merge-conflict';
/** What the merge writes when no message names the sender (a write through the FHIR API). */
const UNATTRIBUTED = 'unattributed source';

export interface FactSource {
  /** The source record ("Observation/123"): one click opens it as stored. */
  reference: string;
  /** The participant that sent it, or the organization worked out from the record. */
  label: string;
}

export interface Conflict {
  kind: string;
  detail: string;
}

export const CONFLICT_LABELS: Record<string, string> = {
  value: 'values differ',
  'problem-status': 'active at one source, resolved at another',
  'medication-status': 'active at one source, stopped at another',
  'allergy-status': 'allergy status differs',
  'allergy-vs-no-known-allergies': 'an allergy beside "no known allergies"',
  status: 'status differs',
};

export function conflictsOf(fact: Resource): Conflict[] {
  return (fact.extension ?? [])
    .filter((e: any) => e.url === CONFLICT)
    .map((e: any) => ({ kind: e.extension?.find((x: any) => x.url === 'kind')?.valueCode ?? '', detail: e.extension?.find((x: any) => x.url === 'detail')?.valueString ?? '' }));
}

/**
 * Who each source record came from: the participant the merge names; for a record written through the
 * FHIR API (no message names a sender), the organization of the person's source record it belongs to.
 * That record is read off the fact's Provenance: its agents are the sources' participants in the sources'
 * order, one per distinct participant, and "the source record Patient/{id}" for each unattributed one.
 */
export function sourcesOf(fact: Resource, provenance: Resource | undefined, orgOfPatient: (patientId: string) => string | undefined): FactSource[] {
  const agents: string[] = (provenance?.agent ?? []).map((a: any) => a.who?.display ?? '');
  const own = fact.serviceProvider?.display ?? fact.performer?.find((p: any) => p.display)?.display ?? fact.performer?.[0]?.actor?.display ?? fact.informationSource?.display ?? fact.recorder?.display;
  const seen = new Set<string>();
  let next = 0;
  return (fact.extension ?? [])
    .filter((e: any) => e.url === SOURCE && e.valueReference?.reference)
    .map((e: any) => {
      const display: string | undefined = e.valueReference.display;
      if (display && display !== UNATTRIBUTED) {
        if (!seen.has(display)) (seen.add(display), next++);
        return { reference: e.valueReference.reference, label: display };
      }
      const patient = /^the source record Patient\/(.+)$/.exec(agents[next++] ?? '')?.[1];
      return { reference: e.valueReference.reference, label: (patient && orgOfPatient(patient)) ?? own ?? 'source not recorded' };
    });
}

/** The message a stored record arrived in (meta.source `urn:tessera:message:{id}` and the like), if any. */
export function arrivedIn(r: Resource | undefined): string | undefined {
  const source = r?.meta?.source;
  if (!source) return undefined;
  const id = /message[:/](.+)$/.exec(source)?.[1];
  return id ? `message ${id}` : source;
}
