import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

/*
 * Searches over the merged view (`Type?patient=<enterprise id>&_view=merged&...`) answered as ordinary
 * searches are: Bundle, links, _sort, _summary, _elements, _total, _include/_revinclude, under the one
 * access policy, audited. Data: one person sent as FHIR by three participants through their own clients,
 * content written here (codes from LOINC; the HIV viral load 20447-9 is in the shipped HIV value set, so
 * it and what refers to it are labelled HIV and withheld from callers without clearance).
 */

const SOURCE = 'https://tessera.dev/fhir/StructureDefinition/merged-source';
const LOINC = 'http://loinc.org';
const sourcesOf = (r: any): string[] => (r.extension ?? []).filter((e: any) => e.url === SOURCE).map((e: any) => e.valueReference.reference).sort();
const codeOf = (r: any): string => r.code?.coding?.[0]?.code;
const matches = (body: any): any[] => (body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource);
const included = (body: any): any[] => (body.entry ?? []).filter((e: any) => e.search?.mode === 'include').map((e: any) => e.resource);
const q = (s: string): string => encodeURIComponent(s);

for (const backend of BACKENDS) {
  describe(`searches over the merged view (${backend})`, () => {
    let s: TestServer;
    let golden: string;
    const patients: Record<string, string> = {};
    /** Source records by name: a1c.north, hiv.east, ... */
    const rec: Record<string, string> = {};

    const get = async (path: string, token?: string) => {
      const res = await s.fhir('GET', path, undefined, token ? { authorization: `Bearer ${token}` } : {});
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const person = () => `patient=Patient/${golden}&_view=merged`;

    before(async () => {
      s = await startTestServer(backend);
      const sites = [
        ['north', 'Northgate Clinic', '2.16.840.1.113883.19.201'],
        ['east', 'Eastside Laboratory', '2.16.840.1.113883.19.202'],
        ['south', 'Southview Hospital', '2.16.840.1.113883.19.203'],
      ];
      const tokens: Record<string, string> = {};
      for (const [key, name, oid] of sites) {
        const added = await addParticipant(s.tessera.repo, { name, mrnSystem: `urn:oid:${oid}`, scope: 'system/*.cruds' });
        tokens[key] = await getToken(s.url, added.client!.clientId, added.client!.clientSecret as string);
        const patient = await s.fhir('POST', 'Patient', {
          resourceType: 'Patient',
          identifier: [{ system: `urn:oid:${oid}`, value: `${key.toUpperCase()}-1` }],
          name: [{ family: 'Haddad', given: ['Leila'] }],
          gender: 'female',
          birthDate: '1971-02-09',
          telecom: [{ system: 'phone', value: '617-555-0188' }],
          address: [{ line: ['9 Orchard Street'], city: 'Quincy', postalCode: '02169' }],
        }, { authorization: `Bearer ${tokens[key]}` });
        assert.equal(patient.status, 201, JSON.stringify(patient.body));
        patients[key] = patient.body.id;
      }
      const post = async (site: string, name: string, r: Resource) => {
        const res = await s.fhir('POST', r.resourceType, r, { authorization: `Bearer ${tokens[site]}` });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        rec[`${name}.${site}`] = `${r.resourceType}/${res.body.id}`;
      };
      const obs = (site: string, code: string, display: string, time: string, value: number, unit: string, extra: object = {}) =>
        ({ resourceType: 'Observation', status: 'final', subject: { reference: `Patient/${patients[site]}` }, category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }], code: { coding: [{ system: LOINC, code, display }] }, effectiveDateTime: time, valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit }, ...extra }) as Resource;
      const dr = (site: string, code: string, time: string, results: string[]) =>
        ({ resourceType: 'DiagnosticReport', status: 'final', subject: { reference: `Patient/${patients[site]}` }, code: { coding: [{ system: LOINC, code }] }, effectiveDateTime: time, result: results.map((reference) => ({ reference })) }) as Resource;
      const practitioner = await s.fhir('POST', 'Practitioner', { resourceType: 'Practitioner', name: [{ family: 'Okafor', given: ['Ngozi'] }] }, { authorization: `Bearer ${tokens.north}` });
      rec.practitioner = `Practitioner/${practitioner.body.id}`;
      // HbA1c, one reading sent by all three, at 08:30, 08:31 and 08:44 (within the rule's 15 minutes).
      await post('north', 'a1c', obs('north', '4548-4', 'Hemoglobin A1c', '2026-10-01T08:30:00Z', 6.8, '%', { performer: [{ reference: rec.practitioner }] }));
      await post('east', 'a1c', obs('east', '4548-4', 'Hemoglobin A1c', '2026-10-01T08:31:00Z', 6.8, '%'));
      await post('south', 'a1c', obs('south', '4548-4', 'Hemoglobin A1c', '2026-10-01T08:44:00Z', 6.8, '%'));
      await post('north', 'glucose', obs('north', '2339-0', 'Glucose', '2026-09-01T07:00:00Z', 104, 'mg/dL'));
      // An HIV viral load from two sources: labelled HIV.
      await post('north', 'hiv', obs('north', '20447-9', 'HIV 1 RNA', '2026-09-15T09:00:00Z', 20, '{copies}/mL'));
      await post('east', 'hiv', obs('east', '20447-9', 'HIV 1 RNA', '2026-09-15T09:02:00Z', 20, '{copies}/mL'));
      // Northgate's report of its HbA1c and glucose; Eastside's of its HbA1c and HIV load (labelled by its result).
      await post('north', 'report', dr('north', '24323-8', '2026-10-01T08:30:00Z', [rec['a1c.north'], rec['glucose.north']]));
      await post('east', 'report', dr('east', '11502-2', '2026-10-01T08:31:00Z', [rec['a1c.east'], rec['hiv.east']]));
      // Southview's copy of Northgate's report (same panel at 08:44: one fact with it), amended, listing no results.
      await post('south', 'report', { ...dr('south', '24323-8', '2026-10-01T08:44:00Z', []), status: 'amended' } as Resource);
      const link = await s.fhir('GET', `Patient?link=Patient/${patients.north}`);
      assert.equal(link.body.entry?.length, 1, 'the MPI made an enterprise record');
      golden = link.body.entry[0].resource.id;
      for (const key of ['east', 'south']) assert.equal((await s.fhir('GET', `Patient?link=Patient/${patients[key]}`)).body.entry?.[0]?.resource.id, golden, `${key} is linked`);
    });
    after(async () => {
      await s?.close();
    });

    it('a fact one of whose source copies matches the criteria comes with all its sources', async () => {
      // Only Southview's copy (08:44) is after 08:40; the fact still lists the three.
      const late = await get(`Observation?${person()}&code=${q(`${LOINC}|4548-4`)}&date=ge2026-10-01T08:40:00Z`);
      assert.equal(late.total, 1);
      assert.deepEqual(sourcesOf(matches(late)[0]), [rec['a1c.east'], rec['a1c.north'], rec['a1c.south']].sort());
      // Before 08:40: Northgate's and Eastside's copies match; the same fact, the same id.
      const early = await get(`Observation?${person()}&code=${q(`${LOINC}|4548-4`)}&date=lt2026-10-01T08:40:00Z`);
      assert.equal(matches(early)[0].id, matches(late)[0].id);
      assert.equal(sourcesOf(matches(early)[0]).length, 3);
    });

    it('answers in the ordinary search\'s shape: links that page the same view, _sort, _summary=count, _elements, _total', async () => {
      const all = await get(`Observation?${person()}`);
      assert.deepEqual(matches(all).map(codeOf), ['4548-4', '20447-9', '2339-0'], 'most recent first by default');
      assert.equal(all.total, 3);
      const first = await get(`Observation?${person()}&_count=1`);
      const links = Object.fromEntries(first.link.map((l: any) => [l.relation, l.url]));
      assert.deepEqual(Object.keys(links).sort(), ['first', 'next', 'self']);
      for (const url of Object.values(links) as string[]) assert.match(url, /_view=merged/);
      const next = await get(links.next.slice(links.next.indexOf('/fhir/') + 6));
      assert.deepEqual(matches(next).map((r) => r.id), [matches(all)[1].id], 'next is the second fact of the same view');
      assert.ok(next.link.some((l: any) => l.relation === 'previous'));
      // _sort through the ordinary search's sort of the source records: oldest first.
      assert.deepEqual(matches(await get(`Observation?${person()}&_sort=date`)).map(codeOf), ['2339-0', '20447-9', '4548-4']);
      // _summary=count: the number of facts (three HbA1c copies are one), no entries.
      const counted = await get(`Observation?${person()}&_summary=count`);
      assert.equal(counted.total, 3);
      assert.equal(counted.entry?.length ?? 0, 0);
      // _elements: the code kept, the value left out; the fact still names its sources.
      const [a1c] = matches(await get(`Observation?${person()}&code=${q(`${LOINC}|4548-4`)}&_elements=code`));
      assert.equal(a1c.valueQuantity, undefined);
      assert.equal(codeOf(a1c), '4548-4');
      assert.equal(sourcesOf(a1c).length, 3);
      assert.ok(a1c.meta.tag.some((t: any) => t.code === 'SUBSETTED'));
      // _total=none: no total on a page that is not the last.
      assert.equal((await get(`Observation?${person()}&_count=1&_total=none`)).total, undefined);
    });

    it('_include and _revinclude resolve through the merged view: facts as facts, the person as the enterprise Patient, others as stored', async () => {
      const reports = await get(`DiagnosticReport?${person()}&code=${q(`${LOINC}|24323-8`)}&_include=DiagnosticReport:result&_include=DiagnosticReport:subject`);
      assert.equal(matches(reports).length, 1);
      const added = included(reports);
      const a1c = added.find((r) => r.resourceType === 'Observation' && codeOf(r) === '4548-4');
      assert.ok(a1c && a1c.id.startsWith('m'), 'the HbA1c result is the merged fact, not Northgate\'s copy');
      assert.equal(sourcesOf(a1c).length, 3);
      assert.ok(added.some((r) => r.resourceType === 'Observation' && codeOf(r) === '2339-0'));
      assert.deepEqual(added.filter((r) => r.resourceType === 'Patient').map((r) => r.id), [golden], 'the subject is the enterprise record');
      assert.equal(added.length, 3);
      // The practitioner is no fact: included as stored.
      const performed = await get(`Observation?${person()}&code=${q(`${LOINC}|4548-4`)}&_include=Observation:performer`);
      assert.deepEqual(included(performed).map((r) => `${r.resourceType}/${r.id}`), [rec.practitioner]);
      // Reverse: both reports that list a copy of the HbA1c, each as its merged fact.
      const rev = await get(`Observation?${person()}&code=${q(`${LOINC}|4548-4`)}&_revinclude=DiagnosticReport:result`);
      const revReports = included(rev);
      assert.deepEqual(revReports.map(codeOf).sort(), ['11502-2', '24323-8']);
      assert.ok(revReports.every((r) => r.id.startsWith('m') && r.subject.reference === `Patient/${golden}`));
    });

    it('chains and _has are conditions on facts: a fact meets one when any of its copies does, on either side', async () => {
      // Only Southview's HbA1c copy (08:44) is after 08:40 and no report lists it; both reports list a copy of that fact.
      const late = await get(`DiagnosticReport?${person()}&result.date=ge2026-10-01T08:40:00Z`);
      assert.deepEqual(matches(late).map(codeOf).sort(), ['11502-2', '24323-8']);
      assert.equal((await get(`DiagnosticReport?${person()}&result:Observation.date=ge2026-10-01T08:40:00Z&_summary=count`)).total, 2);
      // Codes in a link are widened by the code maps, as for the other parameters: the local HbA1c code finds its LOINC copies.
      assert.equal((await get(`DiagnosticReport?${person()}&result.code=${q('urn:tessera:local-lab-codes|HBA1C')}`)).total, 2);
      // The panel fact is amended (Southview's copy) and lists the glucose (Northgate's copy): it meets both.
      const amended = await get(`DiagnosticReport?${person()}&result.code=${q(`${LOINC}|2339-0`)}&status=amended`);
      assert.deepEqual(matches(amended).map(codeOf), ['24323-8']);
      assert.equal(sourcesOf(matches(amended)[0]).length, 2);
      // _has, the referrer a fact: the amended panel's other copy lists the HbA1c and the glucose.
      const listedByAmended = await get(`Observation?${person()}&_has:DiagnosticReport:result:status=amended`);
      assert.deepEqual(matches(listedByAmended).map(codeOf), ['4548-4', '2339-0']);
      // _has, the target a fact: Eastside's report lists its HbA1c copy, Southview's copy is after 08:40.
      const listed = await get(`Observation?${person()}&_has:DiagnosticReport:result:code=${q(`${LOINC}|11502-2`)}&date=ge2026-10-01T08:40:00Z`);
      assert.deepEqual(matches(listed).map(codeOf), ['4548-4']);
      assert.equal(sourcesOf(matches(listed)[0]).length, 3);
      // Conditions the facts do not meet find nothing.
      assert.equal((await get(`DiagnosticReport?${person()}&result.date=ge2026-10-02`)).total, 0);
      assert.equal((await get(`Observation?${person()}&_has:DiagnosticReport:result:status=cancelled`)).total, 0);
      // As in the ordinary search: an unknown parameter in a link is ignored with a warning, an unknown type is a 400.
      for (const unknown of [`DiagnosticReport?${person()}&result.nonsense=1`, `Observation?${person()}&_has:DiagnosticReport:nonsense:code=1`]) {
        const body = await get(unknown);
        assert.ok(body.entry.some((e: any) => e.search.mode === 'outcome' && e.resource.issue.some((i: any) => i.severity === 'warning')), unknown);
      }
      for (const bad of [`Observation?${person()}&_has:Nothing:result:code=1`]) {
        const res = await s.fhir('GET', bad);
        assert.equal(res.status, 400, `${bad}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.resourceType, 'OperationOutcome');
      }
    });

    it('chains and _has reveal nothing the policy withholds', async () => {
      const uncleared = await s.tokenFor('system/*.rs');
      // The HIV load, and Eastside's report labelled by it, are neither found nor make anything match.
      assert.deepEqual(matches(await get(`DiagnosticReport?${person()}&result.code=${q(`${LOINC}|20447-9`)}`)).map(codeOf), ['11502-2']);
      assert.equal((await get(`DiagnosticReport?${person()}&result.code=${q(`${LOINC}|20447-9`)}`, uncleared)).total, 0);
      assert.equal((await get(`Observation?${person()}&_has:DiagnosticReport:result:code=${q(`${LOINC}|11502-2`)}`, uncleared)).total, 0);
      assert.equal((await get(`DiagnosticReport?${person()}&result.date=ge2026-10-01T08:40:00Z`, uncleared)).total, 1, 'the panel, not Eastside\'s report');
      // A token that may not search Observations: a chain into them is refused, as in the ordinary search.
      const reportsOnly = await s.tokenFor('system/Patient.rs system/DiagnosticReport.rs');
      const res = await s.fhir('GET', `DiagnosticReport?${person()}&result.code=${q(`${LOINC}|4548-4`)}`, undefined, { authorization: `Bearer ${reportsOnly}` });
      assert.equal(res.status, 403, JSON.stringify(res.body));
    });

    it('governance: what the caller may not read is not returned, counted or included', async () => {
      const uncleared = await s.tokenFor('system/*.rs');
      const all = await get(`Observation?${person()}`, uncleared);
      assert.deepEqual(matches(all).map(codeOf), ['4548-4', '2339-0'], 'no HIV viral load');
      assert.equal(all.total, 2);
      assert.ok(all.entry.some((e: any) => e.search.mode === 'outcome' && e.resource.issue.some((i: any) => i.code === 'suppressed')), 'says something was withheld');
      assert.equal((await get(`Observation?${person()}&_summary=count`, uncleared)).total, 2);
      assert.equal((await get(`Observation?${person()}&code=${q(`${LOINC}|20447-9`)}`, uncleared)).total, 0);
      // Eastside's report is labelled by its HIV result: not revincluded, nor found.
      const rev = await get(`Observation?${person()}&code=${q(`${LOINC}|4548-4`)}&_revinclude=DiagnosticReport:result`, uncleared);
      assert.deepEqual(included(rev).map(codeOf), ['24323-8']);
      assert.equal((await get(`DiagnosticReport?${person()}&_summary=count`, uncleared)).total, 1);
      // A token that may not read Observations gets the report without its results.
      const reportsOnly = await s.tokenFor('system/Patient.rs system/DiagnosticReport.rs');
      const reports = await get(`DiagnosticReport?${person()}&code=${q(`${LOINC}|24323-8`)}&_include=DiagnosticReport:result`, reportsOnly);
      assert.equal(matches(reports).length, 1);
      assert.deepEqual(included(reports), []);
      // A fact is built only from readable copies: with the labelled Eastside report unreadable, the
      // HbA1c still has its three unlabelled sources; the HIV load, asked by a cleared caller, has two.
      const hiv = await get(`Observation?${person()}&code=${q(`${LOINC}|20447-9`)}`);
      assert.deepEqual(sourcesOf(matches(hiv)[0]), [rec['hiv.east'], rec['hiv.north']].sort());
    });

    it('each merged search is audited by the source records its facts stand for, and names nothing withheld', async () => {
      const searchesNaming = async (reference: string): Promise<number> => {
        await s.tessera.audit?.flush();
        const events = (await get(`AuditEvent?entity=${reference}&_count=500`)).entry ?? [];
        return events.filter((e: any) => e.resource.subtype?.some((c: any) => c.code === 'search-type')).length;
      };
      // Named: the facts' sources and those of the report fact it includes; not the labelled ones.
      const named = [rec['a1c.north'], rec['a1c.east'], rec['a1c.south'], rec['glucose.north'], rec['report.north']];
      const withheld = [rec['hiv.north'], rec['hiv.east'], rec['report.east']];
      const before = await Promise.all([...named, ...withheld].map(searchesNaming));
      // An uncleared reader's search, its facts cut down to the element asked (their sources are kept).
      const reader = await s.tokenFor('system/*.rs');
      const body = await get(`Observation?${person()}&_elements=code&_revinclude=DiagnosticReport:result`, reader);
      assert.equal(matches(body).length, 2);
      assert.equal(included(body).length, 1);
      const afterwards = await Promise.all([...named, ...withheld].map(searchesNaming));
      named.forEach((source, i) => assert.equal(afterwards[i], before[i] + 1, `the merged search names ${source}`));
      withheld.forEach((source, i) => assert.equal(afterwards[named.length + i], before[named.length + i], `the search does not name ${source}`));
    });

    it('$summary serves both views: the merged record by default, the source copies with _view=sources', async () => {
      const resultsSection = (doc: any) => doc.entry[0].resource.section.find((x: any) => x.code.coding[0].code === '30954-2');
      const listedA1c = (doc: any) =>
        resultsSection(doc).entry.map((e: any) => doc.entry.find((d: any) => `${d.resource.resourceType}/${d.resource.id}` === e.reference).resource).filter((r: any) => codeOf(r) === '4548-4');
      const merged = await get(`Patient/${golden}/$summary`);
      assert.equal(listedA1c(merged).length, 1);
      const sources = await get(`Patient/${golden}/$summary?_view=sources`);
      assert.deepEqual(listedA1c(sources).map((r: any) => `Observation/${r.id}`).sort(), [rec['a1c.east'], rec['a1c.north'], rec['a1c.south']].sort());
      // The copies point at their own source Patients, which the document carries.
      const carried = new Set(sources.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.id}`));
      for (const id of Object.values(patients)) assert.ok(carried.has(`Patient/${id}`), `Patient/${id} is in the document`);
      // Under the policy as the merged view is: an uncleared caller's copies hold no HIV load.
      const uncleared = await s.tokenFor('system/*.rs');
      const theirs = await get(`Patient/${golden}/$summary?_view=sources`, uncleared);
      assert.ok(!theirs.entry.some((e: any) => codeOf(e.resource) === '20447-9'));
      assert.ok(sources.entry.some((e: any) => codeOf(e.resource) === '20447-9'), 'the cleared caller\'s has it');
      assert.equal((await s.fhir('GET', `Patient/${golden}/$summary?_view=everything`)).status, 400);
    });
  });
}
