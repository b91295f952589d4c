import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Composition, CompositionSection, Device, Resource } from '@medplum/fhirtypes';
import type { Repository } from '../../store/repository.js';
import type { FhirRequest, FhirResponse } from '../fhir-request.js';
import { badRequest } from '../../fhir/outcome.js';
import { mergedView, sourcesView } from './merged-view.js';
import { isNoKnownAllergy } from '../../record/merge-rules.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

const LOINC = 'http://loinc.org';
const EMPTY_REASON = 'http://terminology.hl7.org/CodeSystem/list-empty-reason';

/**
 * The IPS sections built from the merged record (IPS IG 1.1, Composition slices): LOINC section code,
 * whether the IPS requires it, and which merged facts it lists.
 */
export const IPS_SECTIONS: readonly { code: string; title: string; required: boolean; holds(r: any): boolean; line(r: any): string }[] = [
  { code: '11450-4', title: 'Problem list', required: true, holds: (r) => r.resourceType === 'Condition', line: (r) => `${text(r.code)} (${status(r.clinicalStatus)}${r.onsetDateTime ? `, since ${day(r.onsetDateTime)}` : ''})` },
  {
    code: '48765-2',
    title: 'Allergies and intolerances',
    required: true,
    holds: (r) => r.resourceType === 'AllergyIntolerance',
    line: (r) => `${text(r.code)} (${isNoKnownAllergy(r) ? 'no known allergies' : status(r.clinicalStatus)})`,
  },
  {
    code: '10160-0',
    title: 'Medication summary',
    required: true,
    holds: (r) => r.resourceType === 'MedicationStatement' || r.resourceType === 'MedicationRequest',
    line: (r) => `${text(r.medicationCodeableConcept) || r.medicationReference?.display || 'medication'} (${r.status}${r.authoredOn ? `, ${day(r.authoredOn)}` : ''})`,
  },
  { code: '11369-6', title: 'History of immunizations', required: false, holds: (r) => r.resourceType === 'Immunization', line: (r) => `${text(r.vaccineCode)} (${day(r.occurrenceDateTime)})` },
  {
    code: '30954-2',
    title: 'Relevant diagnostic tests/laboratory data',
    required: false,
    holds: (r) => (r.resourceType === 'Observation' && hasCategory(r, 'laboratory')) || r.resourceType === 'DiagnosticReport',
    line: (r) => `${text(r.code)}: ${value(r)} (${day(r.effectiveDateTime ?? r.issued)})`,
  },
  { code: '8716-3', title: 'Vital signs', required: false, holds: (r) => r.resourceType === 'Observation' && hasCategory(r, 'vital-signs'), line: (r) => `${text(r.code)}: ${value(r)} (${day(r.effectiveDateTime)})` },
  { code: '47519-4', title: 'History of procedures', required: false, holds: (r) => r.resourceType === 'Procedure', line: (r) => `${text(r.code)} (${day(r.performedDateTime ?? r.performedPeriod?.start)})` },
  { code: '46264-8', title: 'Medical devices', required: false, holds: (r) => r.resourceType === 'DeviceUseStatement' || r.resourceType === 'Device', line: (r) => text(r.type) || r.device?.display || 'device' },
];

const hasCategory = (r: any, code: string): boolean => (r.category ?? []).some((c: any) => (c.coding ?? []).some((x: any) => x.code === code));
const text = (cc: any): string => cc?.text ?? cc?.coding?.find((c: any) => c.display)?.display ?? cc?.coding?.[0]?.code ?? '';
const status = (cc: any): string => cc?.coding?.[0]?.code ?? 'status unknown';
const day = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 10) : 'date unknown');
function value(r: any): string {
  if (r.valueQuantity) return `${r.valueQuantity.value} ${r.valueQuantity.unit ?? r.valueQuantity.code ?? ''}`.trim();
  if (r.valueCodeableConcept) return text(r.valueCodeableConcept);
  if (r.valueString) return r.valueString;
  if (r.component) return r.component.map((c: any) => `${text(c.code)} ${c.valueQuantity?.value ?? ''} ${c.valueQuantity?.unit ?? ''}`.trim()).join('; ');
  if (r.conclusion) return r.conclusion;
  return '';
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const narrative = (lines: string[]): { status: 'generated'; div: string } => ({
  status: 'generated',
  div: `<div xmlns="http://www.w3.org/1999/xhtml"><ul>${lines.map((l) => `<li>${escapeXml(l)}</li>`).join('')}</ul></div>`,
});

/** What the listed entries reference that the document carries beside them. */
const REFERENCED = ['Practitioner', 'Organization', 'Medication', 'Location'];

/** How many entries a section lists at most (the most recent first); the narrative says when more exist. */
const SECTION_LIMIT = 200;

/**
 * Patient/{id}/$summary: an International Patient Summary document Bundle built from the merged record
 * (so each fact appears once and only what the caller may read): a Composition (LOINC 60591-5) with the
 * IPS sections, each with its LOINC code, a generated narrative, and its entries or an emptyReason; then
 * the Patient, the author Device and every resource the sections list.
 * `_view=sources` builds the same document from the source copies (each as stored, for stewards and
 * audits: the same fact sent by three participants is listed three times).
 */
export async function patientSummary(repo: Repository, patientId: string, req: FhirRequest): Promise<FhirResponse> {
  const asked = req.query.get('_view') ?? 'merged';
  if (asked !== 'merged' && asked !== 'sources') throw badRequest('_view must be "merged" or "sources"');
  const view = asked === 'sources' ? await sourcesView(repo, patientId, req) : await mergedView(repo, patientId, req);
  const now = new Date().toISOString();
  const patientUrl = `${req.baseUrl}/Patient/${patientId}`;
  const author: Device = { resourceType: 'Device', id: 'tessera-ips-generator', deviceName: [{ name: 'Tessera longitudinal record ($summary)', type: 'user-friendly-name' }] };
  const listed: Resource[] = [];
  const sections: CompositionSection[] = IPS_SECTIONS.map((def) => {
    const members = view.resources
      .map((r, i) => ({ r: r as any, time: view.facts[i].time ?? 0 }))
      .filter((x) => def.holds(x.r) && x.r.status !== 'entered-in-error')
      .sort((a, b) => b.time - a.time);
    const shown = members.slice(0, SECTION_LIMIT);
    listed.push(...shown.map((m) => m.r));
    const section: CompositionSection = { title: def.title, code: { coding: [{ system: LOINC, code: def.code }] } };
    if (!shown.length) {
      section.text = narrative([`No information about ${def.title.toLowerCase()} is available in the exchange.`]);
      section.emptyReason = { coding: [{ system: EMPTY_REASON, code: 'unavailable', display: 'Unavailable' }] };
      return section;
    }
    const more = members.length > shown.length ? [`(${members.length - shown.length} older entries not listed)`] : [];
    section.text = narrative([...shown.map((m) => def.line(m.r)), ...more]);
    section.entry = shown.map((m) => ({ reference: `${m.r.resourceType}/${m.r.id}` }));
    return section;
  }).filter((s, i) => IPS_SECTIONS[i].required || s.entry);
  const composition: Composition = {
    resourceType: 'Composition',
    id: randomUUID(),
    status: 'final',
    type: { coding: [{ system: LOINC, code: '60591-5', display: 'Patient summary Document' }] },
    subject: { reference: `Patient/${patientId}` },
    date: now,
    author: [{ reference: `Device/${author.id}` }],
    title: 'International Patient Summary',
    confidentiality: 'N',
    section: sections,
  };
  // Practitioners and organisations the listed facts reference, when the caller may read them (and, in the
  // source copies' summary, the source Patient records the copies point at).
  const kinds = asked === 'sources' ? [...REFERENCED, 'Patient'] : REFERENCED;
  const referenced = new Set(listed.flatMap((r) => JSON.stringify(r).match(/"reference":"([A-Z][A-Za-z]+\/[^"]+)"/g) ?? []).map((m) => m.slice(13, -1)).filter((ref) => kinds.includes(ref.split('/')[0])));
  const extra = view.referenced.filter((e) => referenced.has(`${e.type}/${e.id}`)).map((e) => JSON.parse(e.json) as Resource);
  const entry = (r: Resource): BundleEntry => ({ fullUrl: `${req.baseUrl}/${r.resourceType}/${r.id}`, resource: r });
  const bundle: Bundle = {
    resourceType: 'Bundle',
    identifier: { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${randomUUID()}` },
    type: 'document',
    timestamp: now,
    entry: [entry(composition), { fullUrl: patientUrl, resource: view.focal }, entry(author), ...listed.map(entry), ...extra.map(entry)],
  };
  return { status: 200, body: bundle };
}
