import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Composition, Resource } from '@medplum/fhirtypes';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { FIXTURES } from './helpers/paths.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * Patient/$summary checked against the structure rules of the International Patient Summary (IPS IG
 * 1.1: Bundle-uv-ips, Composition-uv-ips and its section slices), for the Synthea patients of
 * test/fixtures/synthea-r4 and for a patient known only from a C-CDA document (the HL7 example CCD in
 * test/fixtures/ccda-hl7-examples). The document is also stored as a Bundle, which runs the server's
 * validation against the R4 StructureDefinitions.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

const LOINC = 'http://loinc.org';
/** Section code -> resource types its entries may be (IPS Composition slices), and whether the IPS requires it. */
const SECTIONS: Record<string, { types: string[]; required: boolean }> = {
  '11450-4': { types: ['Condition'], required: true },
  '10160-0': { types: ['MedicationStatement', 'MedicationRequest'], required: true },
  '48765-2': { types: ['AllergyIntolerance'], required: true },
  '11369-6': { types: ['Immunization'], required: false },
  '30954-2': { types: ['Observation', 'DiagnosticReport'], required: false },
  '8716-3': { types: ['Observation'], required: false },
  '47519-4': { types: ['Procedure'], required: false },
  '46264-8': { types: ['DeviceUseStatement', 'Device'], required: false },
};
/** Must-support elements checked per type (IPS profiles), as element names with [x] alternatives. */
const MUST: Record<string, string[][]> = {
  Condition: [['code'], ['subject']],
  AllergyIntolerance: [['code'], ['patient']],
  MedicationStatement: [['medicationCodeableConcept', 'medicationReference'], ['subject'], ['status']],
  MedicationRequest: [['medicationCodeableConcept', 'medicationReference'], ['subject'], ['status']],
  Immunization: [['vaccineCode'], ['patient'], ['occurrenceDateTime', 'occurrenceString']],
  Observation: [['code'], ['status'], ['subject']],
  DiagnosticReport: [['code'], ['status'], ['subject']],
  Procedure: [['code'], ['subject'], ['status']],
};

/** Checks a document Bundle against the IPS structure rules; returns what it breaks. */
function ipsProblems(bundle: Bundle, base: string): string[] {
  const out: string[] = [];
  if (bundle.type !== 'document') out.push('Bundle.type is not document');
  if (!bundle.identifier?.value) out.push('Bundle.identifier missing');
  if (!bundle.timestamp) out.push('Bundle.timestamp missing');
  const byUrl = new Map<string, Resource>();
  for (const e of bundle.entry ?? []) {
    if (!e.fullUrl || !e.resource) out.push('an entry without fullUrl or resource');
    else if (byUrl.has(e.fullUrl)) out.push(`fullUrl ${e.fullUrl} twice`);
    else byUrl.set(e.fullUrl, e.resource);
  }
  const resolve = (ref: string | undefined) => (ref ? byUrl.get(ref.includes('://') ? ref : `${base}/${ref}`) : undefined);
  const composition = bundle.entry?.[0]?.resource as Composition;
  if (composition?.resourceType !== 'Composition') return [...out, 'the first entry is not a Composition'];
  if (!composition.type?.coding?.some((c) => c.system === LOINC && c.code === '60591-5')) out.push('Composition.type is not LOINC 60591-5');
  if (!composition.status || !composition.date || !composition.title) out.push('Composition status, date or title missing');
  if (resolve(composition.subject?.reference)?.resourceType !== 'Patient') out.push('Composition.subject does not resolve to a Patient in the Bundle');
  if (!composition.author?.length || composition.author.some((a) => !resolve(a.reference))) out.push('Composition.author missing or not in the Bundle');
  const codes = (composition.section ?? []).map((s) => s.code?.coding?.find((c) => c.system === LOINC)?.code ?? '');
  for (const [code, def] of Object.entries(SECTIONS)) if (def.required && !codes.includes(code)) out.push(`required section ${code} missing`);
  for (const section of composition.section ?? []) {
    const code = section.code?.coding?.find((c) => c.system === LOINC)?.code ?? '';
    const def = SECTIONS[code];
    if (!def) out.push(`section ${code} is not an IPS section`);
    if (!section.title) out.push(`section ${code} has no title`);
    if (!section.text?.div?.startsWith('<div xmlns="http://www.w3.org/1999/xhtml">')) out.push(`section ${code} has no narrative`);
    if (!section.entry?.length && !section.emptyReason) out.push(`section ${code} has neither entries nor an emptyReason`);
    if (section.entry?.length && section.emptyReason) out.push(`section ${code} has entries and an emptyReason`);
    for (const ref of section.entry ?? []) {
      const target = resolve(ref.reference) as any;
      if (!target) out.push(`section ${code}: ${ref.reference} is not in the Bundle`);
      else if (def && !def.types.includes(target.resourceType)) out.push(`section ${code} lists a ${target.resourceType}`);
      else {
        for (const alternatives of MUST[target.resourceType] ?? []) if (!alternatives.some((a) => target[a] !== undefined)) out.push(`${ref.reference}: ${alternatives.join('|')} missing`);
        for (const k of ['subject', 'patient']) if (target[k] && resolve(target[k].reference)?.resourceType !== 'Patient') out.push(`${ref.reference}.${k} does not resolve to the Bundle's Patient`);
      }
    }
  }
  return out;
}

for (const backend of BACKENDS) {
  describe(`Patient/$summary: an International Patient Summary document (${backend})`, () => {
    let s: TestServer;
    const synthea: string[] = [];
    let ccdaPatient: string;

    before(async () => {
      s = await startTestServer(backend);
      const dir = join(FIXTURES, 'synthea-r4');
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
        const res = await s.fhir('POST', '', JSON.parse(readFileSync(join(dir, f), 'utf8')));
        assert.equal(res.status, 200);
        const patient = res.body.entry.map((e: any) => /(?:^|\/)Patient\/([^/]+)/.exec(e.response.location)?.[1]).find(Boolean);
        if (patient) synthea.push(patient);
      }
      const { participant } = await addParticipant(s.tessera.repo, { name: 'Community Health', mrnSystem: 'urn:oid:2.16.840.1.113883.19.5.99999.2' });
      const text = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_1_CCD.xml'), 'utf8');
      const res = await s.fhir('POST', `$import-ccda?participant=${participant.id}`, text, { 'content-type': 'application/xml' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      ccdaPatient = res.body.parameter.find((p: any) => p.name === 'patient').valueReference.reference.split('/')[1];
    });
    after(async () => s?.close());

    it('follows the IPS structure for the Synthea patients, and validates as an R4 Bundle', async () => {
      assert.ok(synthea.length >= 5);
      for (const id of synthea) {
        const res = await s.fhir('GET', `Patient/${id}/$summary`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(ipsProblems(res.body, s.base), [], `Patient/${id}`);
        const codes = res.body.entry[0].resource.section.map((x: any) => x.code.coding[0].code);
        assert.ok(codes.includes('8716-3') && codes.includes('11369-6'), 'Synthea vital signs and immunizations are summarised');
        const stored = await s.fhir('POST', 'Bundle', res.body);
        assert.equal(stored.status, 201, JSON.stringify(stored.body).slice(0, 800));
      }
    });

    it('a patient known only from a C-CDA document: problems, medications and allergies from the document', async () => {
      const res = await s.fhir('GET', `Patient/${ccdaPatient}/$summary`);
      assert.equal(res.status, 200);
      assert.deepEqual(ipsProblems(res.body, s.base), []);
      const sections = new Map(res.body.entry[0].resource.section.map((x: any) => [x.code.coding[0].code, x]));
      for (const code of ['11450-4', '10160-0', '48765-2']) assert.ok((sections.get(code) as any).entry?.length, `section ${code} has entries`);
      assert.equal((await s.fhir('POST', 'Bundle', res.body)).status, 201);
    });

    it('an empty required section says why (emptyReason), and the checker catches a broken document', async () => {
      const empty = await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Empty' }] });
      const res = await s.fhir('GET', `Patient/${empty.body.id}/$summary`);
      assert.deepEqual(ipsProblems(res.body, s.base), []);
      const sections = res.body.entry[0].resource.section;
      assert.deepEqual(sections.map((x: any) => x.code.coding[0].code).sort(), ['10160-0', '11450-4', '48765-2']);
      assert.ok(sections.every((x: any) => x.emptyReason.coding[0].code === 'unavailable' && !x.entry));
      const broken = structuredClone(res.body);
      broken.entry[0].resource.section.pop();
      broken.entry.splice(1, 1);
      assert.deepEqual(ipsProblems(broken, s.base).sort(), ['Composition.subject does not resolve to a Patient in the Bundle', 'required section 10160-0 missing'].sort());
    });
  });
}
