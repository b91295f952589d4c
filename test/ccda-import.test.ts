import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { dateTime } from '../src/ccda/cda-values.js';
import { privacyConsent } from '../src/consent/privacy-consent.js';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { FIXTURES } from './helpers/paths.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

const DIRECTORIES = ['ccda-hl7-examples', 'ccda-converter-samples'];
const DOCUMENTS = DIRECTORIES.flatMap((d) => readdirSync(join(FIXTURES, d)).filter((f) => /\.(xml|ccda)$/.test(f)).map((f) => join(FIXTURES, d, f)));

/**
 * The coded entries of a document's clinical sections, read from the XML here (independently of the
 * converter: another parser, sections told by their LOINC code): for each section kind, the codes of
 * the things its entries record, and the FHIR resource types that may hold them.
 */
type Kind = 'problems' | 'medications' | 'allergies' | 'results' | 'vital-signs' | 'immunizations' | 'procedures';
const SECTION_CODES: Record<string, Kind> = {
  '11450-4': 'problems',
  '10160-0': 'medications',
  '48765-2': 'allergies',
  '30954-2': 'results',
  '8716-3': 'vital-signs',
  '11369-6': 'immunizations',
  '47519-4': 'procedures',
};
const HOLDERS: Record<Kind, { type: string; codePath: (r: any) => any }[]> = {
  problems: [{ type: 'Condition', codePath: (r) => r.code }],
  medications: [
    { type: 'MedicationStatement', codePath: (r) => r.medicationCodeableConcept },
    { type: 'MedicationRequest', codePath: (r) => r.medicationCodeableConcept },
  ],
  allergies: [{ type: 'AllergyIntolerance', codePath: (r) => r.code }],
  results: [{ type: 'Observation', codePath: (r) => r.code }],
  'vital-signs': [{ type: 'Observation', codePath: (r) => r.code }],
  immunizations: [{ type: 'Immunization', codePath: (r) => r.vaccineCode }],
  procedures: [{ type: 'Procedure', codePath: (r) => r.code }],
};

const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (_name, _path, _leaf, isAttribute) => !isAttribute, removeNSPrefix: true });
const list = (node: any, key: string): any[] => (node?.[key] ?? []) as any[];
const templates = (node: any): string[] => list(node, 'templateId').map((t) => t['@root']);
const code = (node: any): string | undefined => list(node, 'code')[0]?.['@code'];

function codedEntries(text: string): { kind: Kind; code: string }[] {
  const doc = xml.parse(text).ClinicalDocument[0];
  const found: { kind: Kind; code: string }[] = [];
  const sections = (container: any): any[] => list(container, 'component').flatMap((c) => list(c, 'section'));
  const all = list(list(doc, 'component')[0], 'structuredBody').flatMap(sections);
  for (let i = 0; i < all.length; i++) {
    all.push(...sections(all[i]));
    const kind = SECTION_CODES[code(all[i]) ?? ''];
    if (!kind) continue;
    for (const entry of list(all[i], 'entry')) {
      for (const c of entryCodes(kind, entry)) found.push({ kind, code: c });
    }
  }
  return found;
}

/** The codes one entry records, by the C-CDA templates of each kind. */
function entryCodes(kind: Kind, entry: any): string[] {
  const related = (s: any, name: string) => list(s, 'entryRelationship').flatMap((r) => list(r, name));
  const material = (sa: any) => list(list(list(list(sa, 'consumable')[0], 'manufacturedProduct')[0], 'manufacturedMaterial')[0], 'code')[0]?.['@code'];
  switch (kind) {
    case 'problems':
      return [...list(entry, 'act').flatMap((a) => related(a, 'observation')), ...list(entry, 'observation')]
        .filter((o) => templates(o).includes('2.16.840.1.113883.10.20.22.4.4'))
        .map((o) => list(o, 'value')[0]?.['@code'])
        .filter(Boolean);
    case 'allergies':
      return [...list(entry, 'act').flatMap((a) => related(a, 'observation')), ...list(entry, 'observation')]
        .filter((o) => templates(o).includes('2.16.840.1.113883.10.20.22.4.7'))
        .map((o) => {
          // The substance: its code, else a translation of it (code nullFlavor="OTH"), else the kind of allergy.
          const substance = list(list(list(list(o, 'participant')[0], 'participantRole')[0], 'playingEntity')[0], 'code')[0];
          return substance?.['@code'] ?? list(substance, 'translation')[0]?.['@code'] ?? list(o, 'value')[0]?.['@code'];
        })
        .filter(Boolean);
    case 'medications':
    case 'immunizations':
      return list(entry, 'substanceAdministration').map(material).filter(Boolean);
    case 'results':
    case 'vital-signs':
      return [...list(entry, 'organizer').flatMap((o) => list(o, 'component').flatMap((c) => list(c, 'observation'))), ...list(entry, 'observation')].map(code).filter(Boolean) as string[];
    case 'procedures':
      return ['procedure', 'observation', 'act'].flatMap((name) => list(entry, name)).map(code).filter(Boolean) as string[];
  }
}

const XXE = `<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&secret;</title></ClinicalDocument>`;

describe('C-CDA timestamps (TS) to FHIR', () => {
  it('keeps the precision sent, cuts a time without a zone to its date, and leaves out dates and times that do not exist', () => {
    assert.equal(dateTime('2012'), '2012');
    assert.equal(dateTime('20120806'), '2012-08-06');
    assert.equal(dateTime('201208061030-0500'), '2012-08-06T10:30:00-05:00');
    assert.equal(dateTime('201208061030'), '2012-08-06', 'no zone: the date only');
    assert.equal(dateTime('20240229'), '2024-02-29');
    assert.equal(dateTime('20230229'), undefined, 'no 29 February in 2023');
    assert.equal(dateTime('20130431'), undefined, 'no 31 April');
    assert.equal(dateTime('201304302500-0500'), undefined, 'hour 25');
    assert.equal(dateTime('2013-04-30'), undefined, 'not the TS format');
  });
});

for (const backend of BACKENDS) {
  describe(`C-CDA import (${backend})`, () => {
    let s: TestServer;
    let participantId: string;
    let participantToken: string;
    const importDocument = async (body: string, token?: string, query = '') =>
      s.fhir('POST', `$import-ccda${query}`, body, { 'content-type': 'application/xml', ...(token ? { authorization: `Bearer ${token}` } : {}) });
    const count = async () => {
      const [{ n }] = await s.tessera.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM resource');
      return Number(n);
    };

    before(async () => {
      process.env.TESSERA_CCDA_MAX_BYTES = String(2 * 1024 * 1024);
      s = await startTestServer(backend);
      delete process.env.TESSERA_CCDA_MAX_BYTES;
      const { participant, client } = await addParticipant(s.tessera.repo, { name: 'Good Health Clinic', mrnSystem: 'urn:oid:2.16.840.1.113883.19.5.99999.2', scope: 'system/*.cruds' });
      participantId = participant.id;
      participantToken = await getToken(s.url, client?.clientId as string, client?.clientSecret as string);
    });
    after(async () => {
      await s?.close();
    });

    it(`imports every one of the ${DOCUMENTS.length} sample documents; each coded problem, medication, allergy, result, vital sign, immunization and procedure entry becomes a resource of the patient`, async () => {
      assert.equal(DOCUMENTS.length, 34, '12 HL7 examples and 22 converter samples');
      const tally: Record<string, number> = {};
      for (const file of DOCUMENTS) {
        const text = readFileSync(file, 'utf8');
        const res = await importDocument(text, participantToken);
        assert.equal(res.status, 200, `${file}: ${JSON.stringify(res.body).slice(0, 400)}`);
        const params: Record<string, any[]> = {};
        for (const p of res.body.parameter) (params[p.name] ??= []).push(p);
        assert.ok(['processed', 'duplicate'].includes(params.status[0].valueCode), file);
        const patient = params.patient[0].valueReference.reference;
        assert.match(patient, /^Patient\//);
        if (params.status[0].valueCode === 'processed') {
          const doc = await s.fhir('GET', params.documentReference[0].valueReference.reference);
          assert.equal(doc.body.subject.reference, patient);
          const binary = await s.fhir('GET', doc.body.content[0].attachment.url);
          assert.equal(Buffer.from(binary.body.data, 'base64').toString('utf8'), text, `${file}: the original is kept byte for byte`);
        }
        const expected = codedEntries(text);
        const byType = new Map<string, any[]>();
        for (const { kind, code } of expected) {
          tally[kind] = (tally[kind] ?? 0) + 1;
          let found = false;
          for (const holder of HOLDERS[kind]) {
            if (!byType.has(holder.type)) {
              const bundle = await s.fhir('GET', `${holder.type}?patient=${patient}&_count=1000`);
              byType.set(holder.type, (bundle.body.entry ?? []).map((e: any) => e.resource));
            }
            found ||= byType.get(holder.type)!.some((r) => (holder.codePath(r)?.coding ?? []).some((c: any) => c.code === code));
          }
          assert.ok(found, `${file}: the ${kind} entry coded ${code} has no ${HOLDERS[kind].map((h) => h.type).join('/')} of ${patient}`);
        }
      }
      // The samples hold coded entries of every kind (so the loop above checked something of each).
      for (const kind of Object.values(SECTION_CODES)) assert.ok((tally[kind] ?? 0) > 0, `no coded ${kind} entries in the samples: ${JSON.stringify(tally)}`);
    });

    it('goals and health concerns of a care plan become Goals and health-concern Conditions', async () => {
      const text = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'Care_Plan_Care_Plan.xml'), 'utf8').replace('<title>', '<title>Goals check: ');
      const res = await importDocument(text, participantToken);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const patient = res.body.parameter.find((p: any) => p.name === 'patient').valueReference.reference;
      const goals = (await s.fhir('GET', `Goal?patient=${patient}`)).body.entry?.map((e: any) => e.resource) ?? [];
      const oximetry = goals.find((g: any) => g.description.coding?.[0]?.code === '44616-1');
      assert.ok(oximetry, JSON.stringify(goals.map((g: any) => g.description)));
      assert.equal(oximetry.target[0].detailRange.low.value, 92);
      const concerns = (await s.fhir('GET', `Condition?patient=${patient}&category=health-concern`)).body.entry ?? [];
      assert.ok(concerns.length >= 1);
    });

    it('procedure-note, referral-note and CCD sections beyond the core ones are converted: findings, complications, indications, anesthesia, planned procedure, referral, nutrition, skin findings, interventions, outcomes, advance directives', async () => {
      const compositions = new Map<string, any>();
      const compositionOf = async (file: string) => {
        if (!compositions.has(file)) {
          const text = readFileSync(join(FIXTURES, 'ccda-hl7-examples', file), 'utf8').replace('<title>', '<title>Sections check: ');
          const res = await importDocument(text, participantToken);
          assert.equal(res.status, 200, JSON.stringify(res.body));
          assert.equal(res.body.parameter.find((p: any) => p.name === 'status').valueCode, 'processed', JSON.stringify(res.body).slice(0, 2000));
          compositions.set(file, await s.fhir('GET', res.body.parameter.find((p: any) => p.name === 'documentReference').valueReference.reference.replace('DocumentReference', 'Composition')));
        }
        return compositions.get(file);
      };
      const sectionResources = async (file: string, title: string) => {
        const composition = await compositionOf(file);
        const walk = (sections: any[]): any[] => sections.flatMap((x: any) => [x, ...walk(x.section ?? [])]);
        const section = walk(composition.body.section).find((x: any) => x.title.trim().toUpperCase() === title);
        assert.ok(section?.entry, `${file}: section ${title} lists no converted entries`);
        return (await Promise.all(section.entry.map((e: any) => s.fhir('GET', e.reference)))).map((r) => r.body);
      };
      const display = (c: any) => c?.coding?.[0]?.display;
      const findings = await sectionResources('Procedure_Note_Procedure_Note.xml', 'PROCEDURE FINDINGS');
      assert.deepEqual(findings.map((c) => [c.resourceType, display(c.code)]).sort(), [['Condition', 'Diverticulosis of sigmoid colon'], ['Condition', 'Internal hemorrhoids'], ['Condition', 'Sessile polyp']]);
      assert.ok(findings.every((c) => c.category[0].coding[0].code === 'encounter-diagnosis'));
      assert.deepEqual((await sectionResources('Procedure_Note_Procedure_Note.xml', 'COMPLICATIONS')).map((c) => display(c.code)), ['Asthma finding']);
      assert.deepEqual((await sectionResources('Procedure_Note_Procedure_Note.xml', 'PROCEDURE INDICATIONS')).map((c) => display(c.code)), ['Painless rectal bleeding']);
      const anesthesia = await sectionResources('Procedure_Note_Procedure_Note.xml', 'ANESTHESIA');
      assert.ok(anesthesia.some((m) => m.resourceType === 'MedicationStatement' && /Propofol/.test(display(m.medicationCodeableConcept))), JSON.stringify(anesthesia));
      const planned = await sectionResources('Procedure_Note_Procedure_Note.xml', 'PLANNED PROCEDURE');
      assert.deepEqual(planned.map((r) => [r.resourceType, r.intent, display(r.code)]), [['ServiceRequest', 'plan', 'Colonic polypectomy']]);

      const referrals = await sectionResources('Referral_Note_Referral_Note.xml', 'REASON FOR REFERRAL');
      const referral = referrals.find((r) => display(r.code) === 'Patient referral for consultation');
      assert.equal(referral?.resourceType, 'ServiceRequest', JSON.stringify(referrals));
      assert.equal(referral.intent, 'order');
      assert.equal(referral.priority, 'asap');
      assert.equal(display(referral.orderDetail[0]), 'Full care by specialist');
      const nutrition = await sectionResources('Referral_Note_Referral_Note.xml', 'NUTRITION SECTION');
      assert.ok(nutrition.some((o) => o.resourceType === 'Observation' && display(o.code).trim() === 'Nutrition status' && display(o.valueCodeableConcept) === 'Well nourished'), JSON.stringify(nutrition));
      const skin = await sectionResources('Referral_Note_Referral_Note.xml', 'SKIN, PHYSICAL FINDING');
      assert.ok(skin.length >= 1 && skin.every((o) => o.resourceType === 'Observation' && o.category[0].coding[0].code === 'exam'), JSON.stringify(skin));

      const plan = await sectionResources('Transfer_Summary_Transfer_Summary.xml', 'TREATMENT PLAN');
      assert.ok(plan.some((r) => r.resourceType === 'ServiceRequest' && r.code.coding?.some((c: any) => c.code === '573621')), 'a Planned Supply is requested by its product (albuterol)');

      const interventions = await sectionResources('Care_Plan_Care_Plan.xml', 'INTERVENTIONS SECTION');
      assert.ok(interventions.some((r) => r.resourceType === 'ServiceRequest' && r.intent === 'plan' && display(r.code) === 'Elevation of head of bed'), 'a planned intervention');
      assert.ok(interventions.some((r) => r.resourceType === 'Procedure' && display(r.code) === 'Handoff communication (procedure)'), 'a performed intervention');
      const outcomes = await sectionResources('Care_Plan_Care_Plan.xml', 'HEALTH STATUS EVALUATIONS/OUTCOMES SECTION');
      assert.ok(outcomes.some((o) => o.resourceType === 'Observation' && o.code.coding[0].code === '44616-1' && o.valueQuantity.value === 95), JSON.stringify(outcomes));

      const directives = await sectionResources('CCD_CCD_1_CCD.xml', 'ADVANCE DIRECTIVES');
      assert.ok(directives.length >= 1 && directives.every((o) => o.resourceType === 'Observation' && o.category[0].coding[0].code === '42348-3'), JSON.stringify(directives));
    });

    it('a section with no mapping is kept as a note with a warning', async () => {
      const text = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'Diagnostic_Imaging_Report_Diagnostic_Imaging_Report.xml'), 'utf8').replace('<title>', '<title>Notes check: ');
      const res = await importDocument(text, participantToken);
      assert.equal(res.status, 200);
      const warnings = res.body.parameter.find((p: any) => p.name === 'outcome').resource.issue.map((i: any) => i.diagnostics);
      assert.ok(warnings.includes('History: 1 entry was not converted (no mapping for this section); the narrative is kept as a note'), warnings.join('\n'));
      const documentReference = res.body.parameter.find((p: any) => p.name === 'documentReference').valueReference.reference;
      const composition = await s.fhir('GET', `Composition/${documentReference.split('/')[1]}`);
      const history = composition.body.section.find((x: any) => x.title === 'History');
      assert.match(history.text.div, /^<div xmlns="http:\/\/www.w3.org\/1999\/xhtml">.*<\/div>$/s, 'the narrative of the unconverted section is kept');
      assert.equal(history.entry, undefined);
      // The imaging report's Findings and Impressions (sections named by DICOM codes) are converted: the text from the narrative.
      const findings = composition.body.section.find((x: any) => x.title === 'Findings');
      const [finding] = await Promise.all(findings.entry.map((e: any) => s.fhir('GET', e.reference)));
      assert.equal(finding.body.category[0].coding[0].code, 'imaging');
      assert.match(finding.body.valueString, /new round density at the left hilus/);
    });

    it('a CCD: medical equipment, insurance, family history and plan become resources; the message log holds the document and its outcome', async () => {
      const text = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_1_CCD.xml'), 'utf8').replace('<title>', '<title>Resent: ');
      const res = await importDocument(text, participantToken);
      assert.equal(res.status, 200);
      const outcome = res.body.parameter.find((p: any) => p.name === 'outcome').resource;
      const warnings = outcome.issue.map((i: any) => i.diagnostics);
      assert.ok(!warnings.some((w: string) => /not converted/.test(w)), warnings.join('\n'));
      const messageId = res.body.parameter.find((p: any) => p.name === 'message').valueString;
      const logged = await fetch(`${s.url}/messages/${messageId}`, { headers: { authorization: `Bearer ${s.token}` } }).then((r) => r.json() as Promise<any>);
      assert.equal(logged.status, 'processed');
      assert.equal(logged.format, 'ccda');
      assert.equal(logged.raw, text);
      assert.deepEqual(logged.warnings, warnings);
      const documentReference = res.body.parameter.find((p: any) => p.name === 'documentReference').valueReference.reference;
      const composition = await s.fhir('GET', `Composition/${documentReference.split('/')[1]}`);
      // Insurance: the Policy Activity as a Coverage of the patient: payer, kind, member id, relationship, order.
      const insurance = composition.body.section.find((x: any) => x.title === 'INSURANCE PROVIDERS');
      const [coverage] = await Promise.all(insurance.entry.map((e: any) => s.fhir('GET', e.reference)));
      assert.equal(coverage.body.resourceType, 'Coverage');
      assert.deepEqual(coverage.body.payor, [{ display: 'Good Health Insurance' }]);
      assert.equal(coverage.body.subscriberId, '1138345');
      assert.equal(coverage.body.relationship.coding[0].code, 'self');
      assert.equal(coverage.body.order, 2);
      assert.equal(coverage.body.type.coding[0].code, '81');
      // Medical equipment: each supplied device as a Device and the patient's DeviceUseStatement of it; the implant procedure as a Procedure.
      const equipment = composition.body.section.find((x: any) => x.title === 'MEDICAL EQUIPMENT');
      const supplied = await Promise.all(equipment.entry.map((e: any) => s.fhir('GET', e.reference)));
      const uses = supplied.filter((r) => r.body.resourceType === 'DeviceUseStatement').map((r) => r.body);
      const devices = await Promise.all(uses.map((u) => s.fhir('GET', u.device.reference)));
      assert.deepEqual(devices.map((d) => d.body.type.coding[0].display).sort(), ['cane', 'cardiac pacemaker, device (physical object)', 'upper gastrointestinal prosthesis (physical object)']);
      assert.ok(devices.every((d) => d.body.patient.reference === uses[0].subject.reference));
      assert.ok(supplied.some((r) => r.body.resourceType === 'Procedure' && r.body.code.coding[0].display === 'Placement of stent'), JSON.stringify(supplied.map((r) => r.body.resourceType)));
      assert.ok(!warnings.some((w: string) => /^MEDICAL EQUIPMENT: .*not converted/.test(w)), warnings.join('\n'));
      // Family history is converted: one FamilyMemberHistory per relative, referenced from its section.
      const family = composition.body.section.find((x: any) => x.title === 'FAMILY HISTORY');
      const relative = await s.fhir('GET', family.entry[0].reference);
      assert.equal(relative.body.resourceType, 'FamilyMemberHistory');
      assert.equal(relative.body.relationship.coding[0].code, 'FTH');
      // The plan of treatment: planned care as ServiceRequests (intent plan).
      const plan = composition.body.section.find((x: any) => x.title === 'TREATMENT PLAN');
      const planned = await Promise.all(plan.entry.map((e: any) => s.fhir('GET', e.reference)));
      assert.ok(planned.some((r) => r.body.resourceType === 'ServiceRequest' && r.body.intent === 'plan'), JSON.stringify(planned.map((r) => r.body.resourceType)));
      const provenance = await s.fhir('GET', `Provenance?target=${documentReference}`);
      assert.equal(provenance.body.entry[0].resource.agent[0].who.display, 'Good Health Clinic');
    });

    it('the same document sent again is a duplicate and writes nothing', async () => {
      const text = readFileSync(join(FIXTURES, 'ccda-converter-samples', 'Patient-1.ccda'), 'utf8');
      const before = await count();
      const res = await importDocument(text, participantToken);
      assert.equal(res.body.parameter.find((p: any) => p.name === 'status').valueCode, 'duplicate');
      assert.equal(await count(), before);
    });

    it('a later document repeating entries (same entry ids) updates them instead of adding copies', async () => {
      const text = readFileSync(join(FIXTURES, 'ccda-converter-samples', 'Patient-1.ccda'), 'utf8');
      const first = await importDocument(text, participantToken);
      const patient = first.body.parameter.find((p: any) => p.name === 'patient').valueReference.reference;
      const conditionsBefore = (await s.fhir('GET', `Condition?patient=${patient}&_summary=count`)).body.total;
      // The next visit's summary: a new document id, the same problem list.
      const next = text.replace(/(<ClinicalDocument[\s\S]*?<id\b[^>]*?)extension="[^"]*"/, '$1extension="next-visit"').replace(/(<ClinicalDocument[\s\S]*?<id\b[^>]*?root=")[^"]*"/, '$1 2.16.840.1.113883.19.5.99999.77"');
      const res = await importDocument(next, participantToken);
      assert.equal(res.body.parameter.find((p: any) => p.name === 'status').valueCode, 'processed', JSON.stringify(res.body));
      assert.equal((await s.fhir('GET', `Condition?patient=${patient}&_summary=count`)).body.total, conditionsBefore);
    });

    it('an XXE payload, a document type declaration and a non-CDA document are refused with the reason, logged, and change nothing', async () => {
      const before = await count();
      const xxe = await importDocument(XXE, participantToken);
      assert.equal(xxe.status, 400);
      assert.match(xxe.body.issue[0].diagnostics, /a DOCTYPE declaration is not accepted/);
      const messageId = /message ([0-9a-f-]{36})/.exec(xxe.body.issue[0].diagnostics)?.[1];
      const logged = await fetch(`${s.url}/messages/${messageId}`, { headers: { authorization: `Bearer ${s.token}` } }).then((r) => r.json() as Promise<any>);
      assert.equal(logged.status, 'failed');
      assert.doesNotMatch(JSON.stringify(logged), /root:x:0:0/, 'no file was read');
      const notCda = await importDocument('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>', participantToken);
      assert.equal(notCda.status, 400);
      assert.match(notCda.body.issue[0].diagnostics, /the root element is <feed>, not <ClinicalDocument>/);
      const broken = await importDocument('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>unclosed</ClinicalDocument>', participantToken);
      assert.equal(broken.status, 400);
      assert.match(broken.body.issue[0].diagnostics, /not well-formed XML/);
      assert.equal(await count(), before);
    });

    it('an oversize document is refused (413) before it is read', async () => {
      const text = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_2_CCD.xml'), 'utf8');
      const padded = text.replace('</ClinicalDocument>', `<!-- ${'x'.repeat(2 * 1024 * 1024)} --></ClinicalDocument>`);
      const before = await count();
      const res = await importDocument(padded, participantToken);
      assert.equal(res.status, 413);
      assert.match(res.body.issue[0].diagnostics, /exceeds the limit of 2097152 bytes/);
      assert.equal(await count(), before);
    });

    it('labels the document as sensitive as its entries: a depression problem makes its DocumentReference, Composition and Binary PSY, withheld from an uncleared client', async () => {
      // The HL7 example CCD (test/fixtures, CC0) with its chest-pain problem recoded as depressive disorder
      // (SNOMED 35489007, PSY) and a document id of its own.
      const original = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_1_CCD.xml'), 'utf8');
      const sensitive = original.replace('code="29857009"', 'code="35489007"').replace('extension="TT988"', 'extension="TT988-PSY"');
      const res = await importDocument(sensitive, participantToken, `?participant=${participantId}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const documentReference = res.body.parameter.find((p: any) => p.name === 'documentReference').valueReference.reference as string;
      const stored = (await s.fhir('GET', documentReference)).body;
      const binary = stored.content[0].attachment.url as string;
      const composition = stored.context.related[0].reference as string;
      const uncleared = { authorization: `Bearer ${await s.tokenFor('system/*.rs')}` };
      for (const ref of [documentReference, binary, composition]) {
        const labels = ((await s.fhir('GET', ref)).body.meta.security ?? []).map((c: any) => c.code).sort();
        assert.deepEqual(labels, ['PSY', 'R'], ref);
        assert.equal((await s.fhir('GET', ref, undefined, uncleared)).status, 404, `${ref} withheld`);
      }
    });

    it('tessera labels relabel labels documents stored before their parts were labelled as their entries', async () => {
      // The depression document of the test above, its three parts written back without labels and the
      // original without its securityContext: how documents imported by an older release are stored.
      const env = { DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' };
      const search = await s.fhir('GET', 'DocumentReference?_count=100');
      const document = search.body.entry.map((e: any) => e.resource).find((d: any) => d.masterIdentifier?.value === 'TT988-PSY');
      assert.ok(document, 'the depression document is stored');
      const parts = [`DocumentReference/${document.id}`, document.content[0].attachment.url, document.context.related[0].reference];
      for (const ref of parts) {
        const { meta, securityContext, ...bare } = (await s.fhir('GET', ref)).body;
        assert.ok(meta.security.length && (ref.startsWith('Binary') ? securityContext : true));
        assert.equal((await s.fhir('PUT', ref, bare)).status, 200);
      }
      const uncleared = { authorization: `Bearer ${await s.tokenFor('system/*.rs')}` };
      for (const ref of parts) assert.equal((await s.fhir('GET', ref, undefined, uncleared)).status, 200, `${ref} unlabelled now`);
      const dry = await tessera(['labels', 'relabel', '--dry-run', '--data', s.tessera.config.dataDir], env);
      assert.equal(dry.code, 0, dry.stderr);
      for (const ref of parts) assert.match(dry.stdout, new RegExp(`^would relabel ${ref}$`, 'm'));
      assert.equal((await s.fhir('GET', parts[0], undefined, uncleared)).status, 200, 'a dry run writes nothing');
      const run = await tessera(['labels', 'relabel', '--data', s.tessera.config.dataDir], env);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /resource\(s\) looked at, \d+ got new labels/);
      for (const ref of parts) {
        const stored = (await s.fhir('GET', ref)).body;
        assert.deepEqual((stored.meta.security ?? []).map((c: any) => c.code).sort(), ['PSY', 'R'], ref);
        assert.equal((await s.fhir('GET', ref, undefined, uncleared)).status, 404, `${ref} withheld again`);
      }
      assert.equal((await s.fhir('GET', parts[1])).body.securityContext.reference, document.subject.reference);
      const again = await tessera(['labels', 'relabel', '--dry-run', '--data', s.tessera.config.dataDir], env);
      for (const ref of parts) assert.doesNotMatch(again.stdout, new RegExp(`would relabel ${ref}$`, 'm'), 'relabelled once');
    });

    it('a document\'s original (Binary) is in its patient\'s compartment: a consent denying an organization withholds it with the rest', async () => {
      // The HL7 example CCD (test/fixtures, CC0) with a document id and patient of its own; a second
      // participant (a hospital) whose client reads the community record.
      const original = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_1_CCD.xml'), 'utf8');
      const text = original.replace('extension="TT988"', 'extension="TT988-CONSENT"').replace(/<family>[^<]*<\/family>/, '<family>Consentworth</family>');
      const res = await importDocument(text, participantToken, `?participant=${participantId}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const documentReference = res.body.parameter.find((p: any) => p.name === 'documentReference').valueReference.reference as string;
      const stored = (await s.fhir('GET', documentReference)).body;
      const patient = stored.subject.reference as string;
      const binary = stored.content[0].attachment.url as string;
      assert.equal((await s.fhir('GET', binary)).body.securityContext.reference, patient);
      const everything = (await s.fhir('GET', `${patient}/$everything?_view=sources`)).body;
      assert.ok(everything.entry.some((e: any) => `Binary/${e.resource.id}` === binary), 'the original is part of the patient\'s record');
      const hospital = await addParticipant(s.tessera.repo, { name: 'Consent Test Hospital', mrnSystem: 'urn:example:consent-test:mrn', scope: 'system/*.rs' });
      const asHospital = { authorization: `Bearer ${await getToken(s.url, hospital.client!.clientId, hospital.client!.clientSecret as string)}` };
      assert.equal((await s.fhir('GET', binary, undefined, asHospital)).status, 200);
      const deny = await s.fhir('POST', 'Consent', privacyConsent(patient.split('/')[1], { type: 'permit', provision: [{ type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${hospital.participant.organizationId}` } }] }] }, '2026-12-01'));
      assert.equal(deny.status, 201, JSON.stringify(deny.body));
      for (const ref of [binary, documentReference]) assert.equal((await s.fhir('GET', ref, undefined, asHospital)).status, 404, `${ref} withheld after the consent`);
      const search = await s.fhir('GET', `Binary?_id=${binary.split('/')[1]}`, undefined, asHospital);
      assert.equal(search.body.entry?.filter((e: any) => e.resource.resourceType === 'Binary').length ?? 0, 0);
    });

    it('the CapabilityStatement lists $import-ccda', async () => {
      const metadata = await s.fhir('GET', 'metadata');
      assert.ok(metadata.body.rest[0].operation.some((o: any) => o.name === 'import-ccda'));
    });

    it('documents from a client that is no participant are refused unless an operator names the participant', async () => {
      const text = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_2_CCD.xml'), 'utf8').replace('<title>', '<title>Operator import: ');
      const refused = await importDocument(text);
      assert.equal(refused.status, 403);
      assert.match(refused.body.issue[0].diagnostics, /registered participants only/);
      const readOnly = await importDocument(text, await s.tokenFor('system/*.rs'), `?participant=${participantId}`);
      assert.equal(readOnly.status, 403);
      const onBehalf = await importDocument(text, undefined, `?participant=${participantId}`);
      assert.equal(onBehalf.status, 200, JSON.stringify(onBehalf.body));
      // The same document as a DocumentReference with the CDA attachment: a duplicate of the one just stored.
      const asResource = { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'application/xml', data: Buffer.from(text).toString('base64') } }] };
      const wrapped = await s.fhir('POST', `$import-ccda?participant=${participantId}`, asResource);
      assert.equal(wrapped.status, 200, JSON.stringify(wrapped.body));
      assert.equal(wrapped.body.parameter.find((p: any) => p.name === 'status').valueCode, 'duplicate');
      const empty = await s.fhir('POST', `$import-ccda?participant=${participantId}`, { resourceType: 'Parameters' });
      assert.equal(empty.status, 400);
      assert.match(empty.body.issue[0].diagnostics, /Send the C-CDA document as the body/);
    });

    it('tessera import files C-CDA documents on a participant\'s behalf and HL7 v2 files by their sender; a replay rewrites the same resources', async () => {
      const env = { DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' };
      const data = ['--data', s.tessera.config.dataDir];
      const dir = mkdtempSync(join(tmpdir(), 'tessera-ccda-cli-'));
      try {
        const documentFile = join(dir, 'transfer.xml');
        writeFileSync(documentFile, readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'Transfer_Summary_Transfer_Summary.xml'), 'utf8').replace('<title>', '<title>From the CLI: '));
        const refused = await tessera(['import', ...data, documentFile], env);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /C-CDA documents are imported on a participant's behalf: add --participant ID/);

        await addParticipant(s.tessera.repo, { name: 'Lakeside Lab', mrnSystem: 'urn:example:lakeside:mrn', hl7Facility: 'LAKESIDE' });
        const a04 = (control: string, facility: string) => `MSH|^~\\&|LIS|${facility}|HIE|TESSERA|20261120101500||ADT^A04|${control}|P|2.5.1\rPID|1||L-${control}^^^${facility}^MR||Lake^Ada||19800202|F`;
        const hl7File = join(dir, 'feed.hl7');
        writeFileSync(hl7File, `${a04('CLI1', 'LAKESIDE')}\n${a04('CLI2', 'NOWHERE')}\n`);
        const imported = await tessera(['import', ...data, '--participant', participantId, documentFile, hl7File], env);
        assert.equal(imported.code, 1, 'one message failed');
        assert.match(imported.stdout, /^PROCESSED .*transfer\.xml: message [0-9a-f-]{36} \(\d+ warning\(s\): tessera messages show [0-9a-f-]{36}\)$/m);
        assert.match(imported.stdout, /^PROCESSED .*feed\.hl7 message 1: message [0-9a-f-]{36} AA$/m);
        assert.match(imported.stdout, /^ERROR .*feed\.hl7 message 2: message [0-9a-f-]{36} AR Unknown sender: no participant is registered for sending facility "NOWHERE"/m);
        assert.match(imported.stdout, /3 document\(s\) and message\(s\): 2 stored, 1 failed/);
        const lake = await s.fhir('GET', 'Patient?identifier=urn:example:lakeside:mrn|L-CLI1');
        assert.equal(lake.body.entry.length, 1);

        const messageId = /transfer\.xml: message ([0-9a-f-]{36})/.exec(imported.stdout)?.[1] as string;
        const before = await count();
        const replayed = await tessera(['messages', 'replay', ...data, messageId], env);
        assert.equal(replayed.code, 0, replayed.stderr);
        assert.match(replayed.stdout, /^processed/);
        // The same mappings over the same document: every resource is rewritten in place, nothing is added.
        assert.equal(await count(), before);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('tessera import --participant of FHIR files logs and attributes each Bundle; a bad NDJSON line is reported and the rest stored', async () => {
      const env = { DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' };
      const dir = mkdtempSync(join(tmpdir(), 'tessera-fhir-cli-'));
      try {
        const person = (mrn: string) => ({ resourceType: 'Patient', identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5.99999.2', value: mrn }], name: [{ family: 'Feed', given: [mrn] }] });
        const ndjson = join(dir, 'people.ndjson');
        writeFileSync(ndjson, [JSON.stringify(person('NDJ-1')), JSON.stringify(person('NDJ-2')), JSON.stringify({ resourceType: 'Observation', status: 'not-a-status' })].join('\n'));
        const imported = await tessera(['import', '--data', s.tessera.config.dataDir, '--participant', participantId, ndjson], env);
        assert.equal(imported.code, 1, imported.stdout + imported.stderr);
        assert.match(imported.stdout, /^Imported 2 resources from 1 files/m);
        assert.match(imported.stdout, /^ERROR .*people\.ndjson:3: /m);
        const found = await s.fhir('GET', 'Patient?identifier=urn:oid:2.16.840.1.113883.19.5.99999.2|NDJ-1');
        const source = found.body.entry[0].resource.meta.source as string;
        assert.match(source, /^urn:tessera:message:[0-9a-f-]{36}$/);
        const messageId = source.split(':').at(-1);
        const logged = await fetch(`${s.url}/messages/${messageId}`, { headers: { authorization: `Bearer ${s.token}` } }).then((r) => r.json() as Promise<any>);
        assert.equal(logged.participantId, participantId);
        assert.equal(logged.channel, 'file');
        assert.equal(logged.format, 'fhir');
        assert.equal(logged.status, 'processed');
        const provenance = await s.fhir('GET', `Provenance?target=${found.body.entry[0].resource.resourceType}/${found.body.entry[0].resource.id}`);
        assert.equal(provenance.body.entry[0].resource.agent[0].who.display, 'Good Health Clinic');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
