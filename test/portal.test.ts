import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { directoryBundle, ORGANIZATIONS, patientBundles } from '../src/synthetic/community.js';
import { addUser } from '../src/users/user-directory.js';
import { setClearance } from '../src/consent/clearance.js';
import { DEFAULT_TEST_EQUIVALENCES, setTestEquivalences } from '../src/record/test-equivalences.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender } from './helpers/mllp.js';
import { person as sourcePatient } from './helpers/people.js';
import { checkView, launchBrowser, openPage, SCREENSHOTS, signIn } from './helpers/portal-browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { FIXTURES } from './helpers/paths.js';
import { addParticipant } from '../src/participants/participants.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { subscription } from './helpers/subscriptions.js';

// Data: the demo community's deterministic synthetic generator (src/synthetic/community.ts: three
// organizations, patients with encounters, vitals, labs, conditions, medications), plus, written here, the
// same person's record at a second organization (another MRN) with three HbA1c results (LOINC 4548-4,
// reference range 4–5.6 %), the way a clinic's lab feed would send them. Users are made up (example.org).
// The steward's pair is test/mpi-stewardship.test.ts's "one-digit birth-date slip" case; the HL7 v2 ADT^A04
// is test/hl7v2-operations.test.ts's, from a sender not yet registered.

const PASSWORD = 'correct horse battery staple';
const HBA1C = { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }], text: 'Hemoglobin A1c/Hemoglobin.total in Blood' };

for (const backend of BACKENDS) {
  describe(`portal in Chromium (${backend})`, () => {
    let s: TestServer;
    let browser: Browser;
    let person: any;
    let otherMrn: string;
    let otherOrg: (typeof ORGANIZATIONS)[number];
    let goldenId: string;
    let sender: MllpSender;
    let slipped: string[];
    let casey: { fhirUser: string | null };
    let recent: string;

    before(async () => {
      s = await startTestServer(backend);
      browser = await launchBrowser();
      assert.equal((await s.fhir('POST', '', directoryBundle(19))).status, 200);
      for (const bundle of patientBundles({ seed: 19, patients: 4, encountersPerPatient: [6, 8] })) {
        assert.equal((await s.fhir('POST', '', bundle)).status, 200);
      }
      const found = await s.fhir('GET', 'Patient?_count=1&_sort=_id');
      person = found.body.entry[0].resource;
      const home = person.managingOrganization.reference.split('/')[1];
      otherOrg = ORGANIZATIONS.find((o) => o.id !== home) as (typeof ORGANIZATIONS)[number];
      otherMrn = 'CLINIC-77431';
      const copy = {
        resourceType: 'Patient',
        identifier: [
          { use: 'usual', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: otherOrg.mrnSystem, value: otherMrn, assigner: { reference: `Organization/${otherOrg.id}`, display: otherOrg.name } },
          ...person.identifier.filter((i: any) => i.system === 'http://hl7.org/fhir/sid/us-ssn'),
        ],
        name: person.name,
        gender: person.gender,
        birthDate: person.birthDate,
        address: person.address,
        telecom: person.telecom,
        managingOrganization: { reference: `Organization/${otherOrg.id}`, display: otherOrg.name },
      };
      const created = await s.fhir('POST', 'Patient', copy);
      assert.equal(created.status, 201);
      for (const [date, value] of [['2021-03-02', 6.1], ['2023-05-09', 7.4], ['2025-06-20', 8.2]] as const) {
        const obs = {
          resourceType: 'Observation',
          status: 'final',
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
          code: HBA1C,
          subject: { reference: `Patient/${created.body.id}` },
          effectiveDateTime: date,
          valueQuantity: { value, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
          referenceRange: [{ low: { value: 4, unit: '%' }, high: { value: 5.6, unit: '%' } }],
          performer: [{ reference: `Organization/${otherOrg.id}`, display: otherOrg.name }],
        };
        assert.equal((await s.fhir('POST', 'Observation', obs)).status, 201);
      }
      // The same medication recorded by both organizations, active at one and stopped at the other (the
      // merged record's medication-status conflict); lisinopril 10 MG Oral Tablet, RxNorm 314076.
      const LISINOPRIL = { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '314076', display: 'lisinopril 10 MG Oral Tablet' }], text: 'lisinopril 10 MG Oral Tablet' };
      for (const [subject, status, org] of [[person.id, 'active', person.managingOrganization], [created.body.id, 'stopped', { reference: `Organization/${otherOrg.id}`, display: otherOrg.name }]] as const) {
        const statement = { resourceType: 'MedicationStatement', status, medicationCodeableConcept: LISINOPRIL, subject: { reference: `Patient/${subject}` }, effectiveDateTime: '2025-01-15', informationSource: org };
        assert.equal((await s.fhir('POST', 'MedicationStatement', statement)).status, 201);
      }
      // A cholesterol result three weeks ago at the other organization: a lipid panel ordered now repeats it.
      recent = new Date(Date.now() - 21 * 86_400_000).toISOString().slice(0, 10);
      const cholesterol = {
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
        code: { coding: [{ system: 'http://loinc.org', code: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma' }] },
        subject: { reference: `Patient/${created.body.id}` },
        effectiveDateTime: recent,
        valueQuantity: { value: 212, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
        performer: [{ reference: `Organization/${otherOrg.id}`, display: otherOrg.name }],
      };
      assert.equal((await s.fhir('POST', 'Observation', cholesterol)).status, 201);
      // The community's duplicate-test list (`tessera record equivalences`): the defaults and a test this
      // community added, TSH (LOINC 3016-3, 60 days), resulted a month ago at the other organization (before the cholesterol: the timeline test reads that first).
      await setTestEquivalences(s.tessera.db, [...DEFAULT_TEST_EQUIVALENCES, { id: 'tsh', name: 'Thyroid stimulating hormone', lookbackDays: 60, codes: [{ system: 'http://loinc.org', code: '3016-3', display: 'Thyrotropin [Units/volume] in Serum or Plasma' }] }]);
      const tsh = { ...cholesterol, code: { coding: [{ system: 'http://loinc.org', code: '3016-3', display: 'Thyrotropin [Units/volume] in Serum or Plasma' }] }, effectiveDateTime: new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10), valueQuantity: { value: 2.1, unit: 'm[IU]/L', system: 'http://unitsofmeasure.org', code: 'm[IU]/L' } };
      assert.equal((await s.fhir('POST', 'Observation', tsh)).status, 201);
      casey = await addUser(s.tessera.repo, { name: 'Casey Clinician', email: 'casey@example.org', role: 'clinician', organization: ORGANIZATIONS[0].id, password: PASSWORD });
      await addUser(s.tessera.repo, { name: 'Sam Steward', email: 'sam@example.org', role: 'steward', organization: ORGANIZATIONS[0].id, password: PASSWORD });
      const ian = await addUser(s.tessera.repo, { name: 'Ian Analyst', email: 'ian@example.org', role: 'interface-analyst', organization: ORGANIZATIONS[0].id, password: PASSWORD });
      await setClearance(s.tessera.db, `user:${ian.id}`, ['*']); // the message log holds anything: an analyst reads it cleared
      await addUser(s.tessera.repo, { name: 'Priya Privacy', email: 'priya@example.org', role: 'privacy-officer', organization: ORGANIZATIONS[0].id, password: PASSWORD });
      await addUser(s.tessera.repo, { name: 'The Patient', email: 'patient@example.org', role: 'patient', organization: ORGANIZATIONS[0].id, patient: person.id, password: PASSWORD });
      // A possible match for the steward: one person at two sources with a birth-date slip and another address.
      slipped = [];
      for (const p of [
        sourcePatient('hospital-a', 'sl-P-1', 'Lucien', 'Adeyemi', '1958-06-21', { telecom: [] }),
        sourcePatient('clinic-b', 'sl-P-2', 'Lucien', 'Adeyemi', '1958-06-27', { telecom: [], address: [{ line: ['9 Harbour Road'], city: 'Salem', postalCode: '02139' }] }),
      ]) {
        const res = await s.fhir('POST', 'Patient', p);
        assert.equal(res.status, 201);
        slipped.push(res.body.id);
      }
      // A second possible match, two people the steward tells apart (same name and birth month, another day,
      // address and phone): "Not a match".
      const others: string[] = [];
      for (const p of [
        sourcePatient('hospital-a', 'nm-P-1', 'Rosa', 'Delgado', '1964-03-11', { gender: 'female', telecom: [] }),
        sourcePatient('clinic-b', 'nm-P-2', 'Rosa', 'Delgado', '1964-03-17', { gender: 'female', telecom: [], address: [{ line: ['77 Mill Street'], city: 'Lowell', postalCode: '01852' }] }),
      ]) {
        const res = await s.fhir('POST', 'Patient', p);
        assert.equal(res.status, 201);
        others.push(res.body.id);
      }
      // A message from a sender not registered yet: it waits in the error queue.
      s.tessera.config.mllpPort = 0;
      sender = new MllpSender((await s.tessera.startMllp()) as number);
      const ack = await sender.send('MSH|^~\\&|ADT|PIER|HIE|TESSERA|20261110090000||ADT^A04|PI-1|P|2.5.1\rPID|1||P-1^^^PIER^MR||Dunmore^Alex||19900101|U\rPV1|1|O|CLINIC^1||||||||||||||||V-P-1');
      assert.equal(ack.code, 'AR');
    });

    after(async () => {
      await sender?.close();
      await browser?.close();
      await s?.close();
    });

    it('serves the portal at / with a strict CSP and the portal client configuration', async () => {
      const res = await fetch(`${s.url}/`);
      assert.equal(res.status, 200);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const config = await (await fetch(`${s.url}/portal/config.json`)).json();
      assert.ok(config.clientId);
      assert.equal(config.fhirBase, `${s.url}/fhir`);
      assert.equal((await fetch(`${s.url}/portal/../package.json`)).status, 404);
      assert.equal((await fetch(`${s.url}/portal/secret.txt`)).status, 404);
    });

    it('a clinician signs in, finds a patient by another organization\'s MRN, opens the record, sees a lab value\'s source and the HbA1c trend', async () => {
      const { page, errors, urls, logs } = await openPage(browser);
      await page.goto(`${s.url}/`);
      await checkView(page, 'sign-in');
      await signIn(page, s.url, 'casey@example.org', PASSWORD, 'TREAT');
      assert.match(await page.locator('header').innerText(), /clinician · purpose TREAT/);
      await checkView(page, 'patient-search');

      const row = page.locator('table.results tbody tr');
      await page.getByLabel('Medical record number').fill(otherMrn);
      await page.getByLabel('Medical record number').press('Enter');
      await row.first().waitFor();
      assert.equal(await row.count(), 1, 'one person for the MRN');
      const text = await row.first().innerText();
      assert.match(text, new RegExp(person.birthDate));
      assert.match(text, new RegExp(person.gender));
      assert.match(text, new RegExp(otherOrg.name.replace(/'/g, '.')), 'the other organization is listed as a source');
      await checkView(page, 'patient-search-results');
      await page.getByLabel('Medical record number').fill('');
      // By name and birth date: the person once (the index's enterprise record), with what tells people apart.
      await page.getByLabel('Name').fill(person.name[0].family);
      await page.getByLabel('Birth date').fill(person.birthDate);
      await Promise.all([page.waitForResponse((r) => r.url().endsWith('/Patient/_search')), page.getByLabel('Birth date').press('Enter')]);
      await row.filter({ hasText: person.birthDate }).first().waitFor();
      const byName = await row.filter({ hasText: person.birthDate }).innerText();
      assert.match(byName, new RegExp(`${person.gender}\t${person.birthDate} \\(\\d+\\)\t[^\t]*${person.address[0].city}`), 'sex, birth date with age, address');
      assert.match(byName, new RegExp(otherOrg.name.replace(/'/g, '.')), 'both sources');

      await row.filter({ hasText: person.birthDate }).first().getByRole('link').click();
      await page.getByRole('heading', { name: /^Results/ }).waitFor();
      goldenId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
      const sources = await page.locator('#sources-h').locator('..').innerText();
      assert.match(sources, new RegExp(otherOrg.name.replace(/'/g, '.')), 'both source records shown');
      assert.match(await page.getByLabel('Trend').locator('option:checked').innerText(), /Hemoglobin A1c/, 'HbA1c first among trends');
      // Both sources' HbA1c values in one trend: the three written here and any the generator gave the first record.
      const caption = await page.locator('figure.trend figcaption').innerText();
      assert.match(caption, /(\d+) values from \d{4}-\d\d-\d\d to 2025-06-20, latest 8.2 %; reference range 4–5.6 %/);
      assert.ok(Number(/(\d+) values/.exec(caption)?.[1]) >= 3);
      assert.ok(await page.locator('figure.trend canvas').count(), 'the chart is drawn');

      const lab = page.locator('table.results tbody tr', { hasText: '8.2 %' });
      assert.match(await lab.innerText(), new RegExp(`H[\\s\\S]*4–5.6[\\s\\S]*${otherOrg.name.replace(/'/g, '.')}`), 'abnormal flag, range and source organization');
      await checkView(page, 'patient-page');
      await lab.getByRole('button', { name: /Original Observation/ }).click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      await dialog.getByText('As stored').waitFor(); // the original is read from the server on the click
      assert.match(await dialog.innerText(), /As stored, version 1[\s\S]*written through the FHIR API[\s\S]*"value": 8.2/);
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });

      // The merged record: the medication both organizations sent is one row, with both sources, highlighted as a conflict.
      const lisinopril = page.locator('#medications-h').locator('..').locator('tbody tr', { hasText: 'lisinopril' });
      assert.equal(await lisinopril.count(), 1, 'one fact for both sources');
      assert.equal(await lisinopril.getAttribute('class'), 'conflict');
      const medText = await lisinopril.innerText();
      assert.match(medText, /Sources disagree: active at one source, stopped at another/);
      assert.match(medText, new RegExp(otherOrg.name.replace(/'/g, '.')));
      assert.equal(await lisinopril.getByRole('button', { name: /^Original MedicationStatement/ }).count(), 2, 'one original per source');
      assert.match(await page.locator('#care-team-h').locator('..').innerText(), new RegExp(otherOrg.name.replace(/'/g, '.')), 'the other organization cares for the patient');

      // A duplicate-test alert from the CDS Hooks service: a lipid panel three weeks after a cholesterol result.
      // The tests offered are the service's (the community's equivalences, from its discovery), not the portal's.
      const offered = page.getByLabel('Test you are about to order').locator('option');
      await offered.first().waitFor({ state: 'attached' });
      assert.deepEqual(await offered.allInnerTexts(), ['Hemoglobin A1c', 'Lipid panel', 'CT of the head', 'Thyroid stimulating hormone']);
      await page.getByLabel('Test you are about to order').selectOption({ label: 'Thyroid stimulating hormone' });
      await page.getByRole('button', { name: 'Check for duplicates' }).click();
      await page.locator('.cds-card', { hasText: 'Thyroid stimulating hormone' }).waitFor();
      await page.getByLabel('Test you are about to order').selectOption({ label: 'Lipid panel' });
      await page.getByRole('button', { name: 'Check for duplicates' }).click();
      const card = page.locator('.cds-card');
      await card.first().waitFor();
      assert.match(await card.first().innerText(), new RegExp(`Possible duplicate test: Lipid panel resulted ${recent}`));
      await page.getByLabel('Test you are about to order').selectOption({ label: 'CT of the head' });
      await page.getByRole('button', { name: 'Check for duplicates' }).click();
      await page.getByText('No duplicate found').waitFor();

      // The timeline across organizations ($timeline), most recent first.
      await page.getByRole('button', { name: 'Show the timeline' }).click();
      const events = page.locator('ol.timeline li');
      await events.first().waitFor();
      assert.match(await events.first().innerText(), new RegExp(`${recent} Result Cholesterol`));
      await checkView(page, 'patient-page-merged');

      // A reload keeps the user signed in (a new access token from the HttpOnly session cookie) on the same page.
      await page.reload();
      await page.getByRole('heading', { name: /^Results/ }).waitFor();
      assert.match(await page.locator('header').innerText(), /clinician · purpose TREAT/);
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === 'tessera_portal_refresh');
      assert.ok(session && session.httpOnly && session.sameSite === 'Strict' && session.path === '/oauth/session', JSON.stringify(cookies.map((c) => ({ ...c, value: '…' }))));
      assert.ok(!cookies.some((c) => c.name !== 'tessera_portal_refresh' && c.value.split('.').length === 3), 'no token in a script-readable cookie');

      // Purpose of use per patient: emergency treatment declared for this patient only; the audit records it.
      await page.getByLabel('Purpose of use for this patient').selectOption('ETREAT');
      await page.getByRole('heading', { name: /^Results/ }).waitFor();
      await page.locator('#medications-h').waitFor();
      // The audit log is written by its own thread in batches: read until the page's requests are in it.
      let purposes: string[] = [];
      for (let attempt = 0; attempt < 40 && !purposes.includes('ETREAT'); attempt++) {
        if (attempt) await new Promise((r) => setTimeout(r, 250));
        const audit = await s.fhir('GET', `AuditEvent?patient=${goldenId}&_count=1000`);
        purposes = (audit.body.entry ?? []).map((e: any) => e.resource).filter((e: any) => JSON.stringify(e.agent).includes(casey.fhirUser as string)).flatMap((e: any) => (e.purposeOfEvent ?? []).map((p: any) => p.coding[0].code));
      }
      assert.ok(purposes.includes('ETREAT') && purposes.includes('TREAT'), `purposes audited: ${[...new Set(purposes)]}`);

      // A purpose the role may not declare is refused, and the session goes on; the endpoint serves the portal only.
      const rotated = (await page.context().cookies()).find((c) => c.name === 'tessera_portal_refresh');
      assert.ok(rotated && rotated.value !== session.value, 'each refresh rotates the cookie');
      const sessionCookie = `tessera_portal_refresh=${encodeURIComponent(rotated.value)}`;
      const portalToken = (body: string, headers: Record<string, string> = { 'x-tessera-portal': '1' }) =>
        fetch(`${s.url}/oauth/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
      const refused = await portalToken('grant_type=refresh_token&purpose_of_use=HOPERAT', { 'x-tessera-portal': '1', cookie: sessionCookie });
      assert.equal(refused.status, 400);
      assert.match((await refused.json()).error_description, /not one a clinician user may declare/);
      assert.equal((await portalToken('grant_type=refresh_token', { cookie: sessionCookie })).status, 403, 'no portal header: refused');
      assert.equal((await portalToken('grant_type=refresh_token')).status, 204, 'no session cookie: nothing issued');
      await page.reload();
      await page.getByRole('heading', { name: /^Results/ }).waitFor();

      // Nothing about the patient in a query string, nothing kept in the browser's storage, no console errors (CSP).
      const searchTerms = [otherMrn, person.birthDate, person.name[0].family];
      for (const u of urls) {
        const query = new URL(u).search;
        for (const term of searchTerms) assert.ok(!query.includes(encodeURIComponent(term)) && !query.includes(term), `${term} in the query string of ${u}`);
      }
      assert.deepEqual(await page.evaluate(() => [localStorage.length, sessionStorage.length]), [0, 0]);
      assert.deepEqual(await page.evaluate(async () => [(await indexedDB.databases()).length, (await caches.keys()).length]), [0, 0], 'no IndexedDB, no Cache Storage');
      for (const term of [...searchTerms, person.name[0].given[0]]) assert.ok(!logs.some((l) => l.includes(term)), `${term} in the page's console`);
      // Signing out revokes the grant: the cookie is gone, a reload shows the sign-in page, the last token is dead.
      const lastCookie = (await page.context().cookies()).find((c) => c.name === 'tessera_portal_refresh')?.value as string;
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      assert.ok(!(await page.context().cookies()).some((c) => c.name === 'tessera_portal_refresh'), 'the session cookie is cleared');
      await page.reload();
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      assert.equal((await portalToken('grant_type=refresh_token', { 'x-tessera-portal': '1', cookie: `tessera_portal_refresh=${encodeURIComponent(lastCookie)}` })).status, 400, 'the revoked session cannot be resumed');
      assert.deepEqual(errors, []);
      await page.context().close();
    });

    it('a clinician reads a C-CDA document, its narrative rendered as safe HTML, and can download the original', async () => {
      // HL7's example CCD (test/fixtures/ccda-hl7-examples, as test/ccda-import.test.ts sends it) from a clinic
      // registered here, with what a hostile or careless sender could put in a narrative added to one section
      // (an event handler, a style loading a URL, an external link, an image, a script and an img of another
      // namespace): none of it may run, load or link anything; its text alone may show.
      const { participant } = await addParticipant(s.tessera.repo, { name: 'Good Health Clinic', mrnSystem: 'urn:oid:2.16.840.1.113883.19.5.99999.2' });
      const hostile = [
        '<content styleCode="Bold" onclick="window.pwned = 1" style="background:url(https://evil.example/bg)">Checked at every visit</content>',
        '<linkHtml href="https://evil.example/track">Device registry entry</linkHtml>',
        '<renderMultiMedia referencedObject="IMG1"/>',
        '<script xmlns="http://www.w3.org/1999/xhtml">window.pwned = 2</script>',
        '<img xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example/pixel.png" onerror="window.pwned = 3"/>',
      ].join('');
      const fixture = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_1_CCD.xml'), 'utf8');
      const xml = fixture.replace('<content ID="Eqpt1">Biliary Stent, May 5, 2013</content>', (m) => `${m}${hostile}`);
      assert.notEqual(xml, fixture);
      const imported = await s.fhir('POST', `$import-ccda?participant=${participant.id}`, xml, { 'content-type': 'application/xml' });
      assert.equal(imported.status, 200, JSON.stringify(imported.body).slice(0, 500));
      const patientId = imported.body.parameter.find((p: any) => p.name === 'patient').valueReference.reference.split('/')[1];
      const { page, errors, urls } = await openPage(browser);
      await signIn(page, s.url, 'casey@example.org', PASSWORD, 'TREAT');
      await page.evaluate((id) => (location.hash = `#/patient/${id}`), patientId);
      const row = page.locator('#documents-h').locator('..').locator('tbody tr').first();
      await row.waitFor();
      // A fact from the document: its badge names the clinic, its original the message the document arrived in.
      const allergy = page.locator('#allergies-h').locator('..').locator('tbody tr', { hasText: /penicillin/i }).first();
      await allergy.getByRole('button', { name: 'Original AllergyIntolerance from Good Health Clinic' }).click();
      const original = page.getByRole('dialog');
      await original.getByText('As stored').waitFor();
      assert.match(await original.innerText(), /arrived in message \S+/);
      await page.keyboard.press('Escape');
      await original.waitFor({ state: 'hidden' });
      await row.getByRole('button', { name: /^Read/ }).click();
      const doc = page.locator('article.document');
      await doc.getByRole('heading', { name: 'Patient Chart Summary' }).waitFor();
      assert.match(await doc.innerText(), /ALLERGIES AND ADVERSE REACTIONS[\s\S]*Penicillin/i);
      // The narrative's structure, as HTML: the allergies table with its header cells, the problems' nested lists, bold content.
      const allergies = doc.locator('section.cda-section', { has: page.getByRole('heading', { name: 'ALLERGIES AND ADVERSE REACTIONS' }) });
      assert.deepEqual(await allergies.locator('table thead th').allInnerTexts(), ['Substance', 'Reaction'], 'the table\'s header cells');
      assert.ok(await allergies.locator('table tbody td', { hasText: 'Penicillin' }).count());
      const problems = doc.locator('section.cda-section', { has: page.getByRole('heading', { name: 'PROBLEMS' }) });
      assert.match(await problems.locator('ul > li > ul > li').first().innerText(), /Pneumonia/);
      assert.equal(await doc.locator('.cda-bold', { hasText: 'Checked at every visit' }).count(), 1, 'styleCode Bold rendered');
      assert.match(await doc.innerText(), /Device registry entry[\s\S]*image or media in the original, not shown here/);
      // Nothing runs, loads or links: only whitelisted elements and attributes, no request to another site.
      const found = (await doc.evaluate((el) => [...el.querySelectorAll('*')].flatMap((e) => [e.localName, ...[...e.attributes].map((a) => `@${a.name}`)]))) as string[];
      const allowed = new Set(['article', 'h3', 'h4', 'h5', 'h6', 'p', 'section', 'ul', 'ol', 'li', 'table', 'caption', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'colgroup', 'col', 'span', 'sub', 'sup', 'br', 'small', 'strong', 'button', '@class', '@colspan', '@rowspan', '@scope', '@aria-label', '@aria-labelledby', '@id', '@tabindex', '@type']);
      assert.deepEqual([...new Set(found.filter((x) => !allowed.has(x)))], [], 'elements or attributes beyond the whitelist');
      assert.equal(await page.evaluate(() => (window as any).pwned), undefined, 'no script of the document ran');
      assert.deepEqual(urls.filter((u) => u.includes('evil.example')), [], 'nothing loaded from the document');
      await checkView(page, 'document');
      const box = (await doc.boundingBox()) as { x: number; y: number; width: number; height: number };
      await page.screenshot({ path: join(SCREENSHOTS, 'document-reader-1280.png'), fullPage: true, clip: { ...box, y: box.y + (await page.evaluate(() => window.scrollY)), height: Math.min(box.height, 1000) } }); // the reader's top, for docs/portal.md
      const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Download' }).click()]);
      assert.match(download.suggestedFilename(), /\.xml$/);
      assert.equal(readFileSync((await download.path()) as string, 'utf8'), xml, 'the original, as sent');
      assert.deepEqual(errors, []);
      await page.context().close();
    });

    it('two tabs reloading at once keep the session (refreshes serialised across tabs)', async () => {
      // Both tabs share the browser's HttpOnly session cookie; each reload refreshes it, and the refresh token
      // rotates: a used one presented again revokes the grant (as for a stolen token). Without a lock across
      // tabs, two reloads at once present the same cookie and the second revokes the session of both.
      const { page, errors } = await openPage(browser);
      await signIn(page, s.url, 'casey@example.org', PASSWORD, 'TREAT');
      const other = await page.context().newPage();
      const otherErrors: string[] = [];
      other.on('console', (m) => m.type() === 'error' && otherErrors.push(m.text()));
      await other.goto(`${s.url}/#/search`);
      await other.getByRole('heading', { name: 'Find a patient' }).waitFor();
      for (let round = 0; round < 4; round++) {
        await Promise.all([page.reload(), other.reload()]);
        for (const tab of [page, other]) {
          await tab.getByRole('heading', { name: 'Find a patient' }).or(tab.getByRole('button', { name: 'Sign in' })).first().waitFor();
          assert.equal(await tab.getByRole('button', { name: 'Sign out' }).count(), 1, `round ${round + 1}: both tabs still signed in`);
        }
      }
      // The grant is alive: a patient search through the API answers in both.
      await other.getByLabel('Medical record number').fill(otherMrn);
      await other.getByLabel('Medical record number').press('Enter');
      await other.locator('table.results tbody tr').first().waitFor();
      assert.deepEqual([...errors, ...otherErrors], []);
      await page.context().close();
    });

    it('a data steward resolves a review-queue pair; PIXm shows the link afterwards; unlinks, links, merges and unmerges from the identity page', async () => {
      const { page, errors } = await openPage(browser);
      await signIn(page, s.url, 'sam@example.org', PASSWORD, 'HOPERAT');
      await page.getByRole('heading', { name: 'Identity review queue' }).waitFor();
      const pair = page.locator('section.card', { hasText: 'Lucien Adeyemi and Lucien Adeyemi' });
      await pair.waitFor();
      const text = await pair.innerText();
      assert.match(text, /1958-06-21[\s\S]*1958-06-27/, 'both birth dates side by side');
      assert.match(text, /Agreement per field[\s\S]*birth/i);
      await pair.getByText('History of these identities').click();
      await pair.locator('details tbody tr', { hasText: 'enterprise-created' }).first().waitFor();
      await checkView(page, 'steward-queue');
      await pair.getByRole('button', { name: 'Same person: link' }).click();
      assert.match(await pair.getByRole('alert').innerText(), /reason/, 'a decision needs a reason');
      await pair.getByLabel('Reason').fill('Same person: birth date typo at the clinic, confirmed by phone');
      await pair.getByRole('button', { name: 'Same person: link' }).click();
      await pair.waitFor({ state: 'detached' });
      const different = page.locator('section.card', { hasText: 'Rosa Delgado and Rosa Delgado' });
      await different.getByLabel('Reason').fill('Two people: different mothers\' names on file at both sources');
      await different.getByRole('button', { name: 'Not a match' }).click();
      await different.waitFor({ state: 'detached' });
      const rosa = await s.fhir('GET', `Patient/$ihe-pix?sourceIdentifier=${encodeURIComponent('urn:example:hospital-a:mrn|nm-P-1')}`);
      assert.ok(!(rosa.body.parameter ?? []).some((p: any) => p.name === 'targetIdentifier' && p.valueIdentifier.value === 'nm-P-2'), 'not linked');
      const pix = await s.fhir('GET', `Patient/$ihe-pix?sourceIdentifier=${encodeURIComponent('urn:example:hospital-a:mrn|sl-P-1')}`);
      assert.equal(pix.status, 200);
      assert.ok(pix.body.parameter.some((p: any) => p.name === 'targetIdentifier' && p.valueIdentifier.value === 'sl-P-2'), JSON.stringify(pix.body));

      // Any identity, not only queue pairs: unlink one record of the enterprise, then link it back.
      const pixTargets = async () => ((await s.fhir('GET', `Patient/$ihe-pix?sourceIdentifier=${encodeURIComponent('urn:example:hospital-a:mrn|sl-P-1')}`)).body.parameter ?? []).filter((p: any) => p.name === 'targetIdentifier').map((p: any) => p.valueIdentifier.value);
      await page.getByRole('link', { name: 'Identities' }).click();
      await page.getByLabel('Patient id (a source record or an enterprise record)').fill(slipped[0]);
      await page.getByRole('button', { name: 'Open identity' }).click();
      const members = page.locator('table.members tbody tr');
      await members.nth(1).waitFor();
      assert.equal(await members.count(), 2, 'both records in the enterprise');
      await checkView(page, 'steward-identity');
      const second = members.filter({ hasText: slipped[1] });
      await second.getByRole('button', { name: 'Unlink' }).click();
      assert.match(await second.getByRole('alert').innerText(), /reason/, 'unlinking needs a reason');
      await second.getByLabel(/^Reason/).fill('Different person after all: the clinic confirmed another birth date');
      await second.getByRole('button', { name: 'Unlink' }).click();
      await page.getByRole('status').filter({ hasText: 'unlinked' }).waitFor();
      await members.filter({ hasText: slipped[1] }).waitFor({ state: 'detached' });
      assert.ok(!(await pixTargets()).includes('sl-P-2'), 'PIXm no longer links them');
      await page.getByLabel('Patient id of the record to link').fill(slipped[1]);
      await page.locator('fieldset', { hasText: 'Link a record' }).getByLabel('Reason').fill('Same person: confirmed with the patient in person');
      await page.getByRole('button', { name: 'Link record' }).click();
      await page.getByRole('status').filter({ hasText: 'linked' }).waitFor();
      await members.nth(1).waitFor();
      assert.ok((await pixTargets()).includes('sl-P-2'), 'PIXm links them again');
      const history = page.locator('#identity-history-h').locator('..');
      await history.getByText('confirmed with the patient in person').waitFor();

      // Merge another identity into this one, then undo it from the merged (retired) identity's page. The
      // other identity is a third record at another source that the index did not link (another name,
      // birth date, address, phone): a steward merging two enterprises by mistake, then undoing it.
      const third = await s.fhir('POST', 'Patient', sourcePatient('pier', 'sl-P-3', 'Marguerite', 'Okonkwo', '1971-02-03', { gender: 'female', telecom: [{ system: 'phone', value: '(508) 555-0199' }], address: [{ line: ['4 Quarry Lane'], city: 'Worcester', postalCode: '01602' }] }));
      assert.equal(third.status, 201);
      const enterpriseOf = async (id: string) => ((await s.fhir('GET', `Patient?link=Patient/${id}`)).body.entry ?? []).map((e: any) => e.resource.id)[0] as string;
      const otherEnterprise = await enterpriseOf(third.body.id);
      const thisEnterprise = await enterpriseOf(slipped[0]);
      assert.ok(otherEnterprise && thisEnterprise && otherEnterprise !== thisEnterprise, 'two identities before the merge');
      const merge = page.locator('fieldset', { hasText: 'Merge another identity into this one' });
      await merge.getByLabel('Enterprise id of the identity to merge in').fill(otherEnterprise);
      await merge.getByRole('button', { name: 'Merge identities' }).click();
      assert.match(await merge.getByRole('alert').innerText(), /reason/, 'merging needs a reason');
      await merge.getByLabel('Reason').fill('Same person: registered under her married name at Pier');
      await merge.getByRole('button', { name: 'Merge identities' }).click();
      await page.getByRole('status').filter({ hasText: 'merged into this one' }).waitFor();
      await members.filter({ hasText: third.body.id }).waitFor();
      assert.equal(await members.count(), 3, 'the merged identity\'s record joins this one');
      assert.ok((await pixTargets()).includes('sl-P-3'), 'PIXm shows the merged record');
      await checkView(page, 'steward-identity-merged');
      // The merged identity's own page: retired, replaced by this one; the merge is undone there.
      await page.evaluate((id) => (location.hash = `#/identity/${id}`), otherEnterprise);
      await page.getByText('merged into another identity: inactive').waitFor();
      await history.getByText('registered under her married name').waitFor(); // the merge and its reason, in the merged identity's history
      const unmerge = page.locator('fieldset', { hasText: 'Undo the merge of this identity' });
      await unmerge.getByRole('button', { name: 'Unmerge' }).click();
      assert.match(await unmerge.getByRole('alert').innerText(), /reason/, 'unmerging needs a reason');
      await unmerge.getByLabel(/^Reason/).fill('Merged the wrong person: a different birth date on her ID');
      await unmerge.getByRole('button', { name: 'Unmerge' }).click();
      await page.getByRole('status').filter({ hasText: 'Merge undone' }).waitFor();
      await page.getByText('merged into another identity: inactive').waitFor({ state: 'detached' });
      assert.ok(!(await pixTargets()).includes('sl-P-3'), 'PIXm no longer shows the merged record');
      assert.ok((await pixTargets()).includes('sl-P-2'), 'the link made before the merge stays');
      await history.getByText('Merged the wrong person').waitFor();
      assert.deepEqual(errors, []);
      await page.context().close();
    });

    it('an interface analyst opens a failed message and replays it after its sender is registered', async () => {
      const registered = await fetch(`${s.url}/participants`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Pier Hospital', mrnSystem: 'urn:example:pier:mrn', hl7Facility: 'PIER' }) });
      assert.equal(registered.status, 201);
      // Pier subscribes to new results (written by the operator for it, as test/notify-delivery.test.ts's
      // subscriptions are); its endpoint does not answer, so deliveries fail and the status says so.
      const pierOrg = (await registered.json()).participant.organizationId;
      const sub = await s.fhir('POST', 'Subscription', subscription({ topic: 'new-result', endpoint: 'http://127.0.0.1:9/hook', organization: pierOrg }));
      assert.equal(sub.status, 201, JSON.stringify(sub.body));
      // A laboratory result from the now registered sender with its own test code (OBX-3 in the lab's `L`
      // system, no LOINC: the shape of test/local-codes.test.ts's feeds): it goes on the unmapped-code worklist.
      const oru = ['MSH|^~\\&|LIS|PIER|HIE|TESSERA|20261201081500||ORU^R01^ORU_R01|PI-2|P|2.5.1', 'PID|1||P-9^^^PIER^MR||Okafor^Ada||19700304|F', 'OBR|1||ORD-9^PIER|CHEM7^Basic chemistry^L|||20261201070000||||||||||||||||||F', 'OBX|1|NM|GLU^Glucose, serum^L||182|mg/dL|70-99|H|||F|||20261201070000'].join('\r');
      assert.equal((await sender.send(oru)).code, 'AA');
      const traffic = await fetch(`${s.url}/participants/traffic?hours=24`, { headers: { authorization: `Bearer ${s.token}` } });
      assert.equal(traffic.status, 200);
      const pier = (await traffic.json()).participants.find((p: any) => p.name === 'Pier Hospital');
      assert.equal(pier.messages, 1, JSON.stringify(pier));
      assert.equal(pier.failed, 0);
      assert.ok(pier.lastMessage);
      const wrong = await fetch(`${s.url}/participants/traffic?hours=0`, { headers: { authorization: `Bearer ${s.token}` } });
      assert.equal(wrong.status, 400);
      assert.equal((await wrong.json()).resourceType, 'OperationOutcome');

      const { page, errors } = await openPage(browser);
      await signIn(page, s.url, 'ian@example.org', PASSWORD, 'HOPERAT');
      await page.getByRole('heading', { name: /^Error queue/ }).waitFor();
      assert.match(await page.locator('#participants-h').locator('..').innerText(), /Pier Hospital/);
      const failed = page.locator('#errors-h').locator('..').locator('tbody tr', { hasText: 'Unknown sender' });
      await failed.first().waitFor();
      await checkView(page, 'interfaces');
      // The figures come from the server; the worklist lists the sender's local code.
      const pierRow = page.locator('table.traffic tbody tr', { hasText: 'Pier Hospital' });
      assert.match(await pierRow.innerText(), /Pier Hospital\t[^\t]*\t1\t0.04\t0 \(0 %\)\t\d{4}-/);
      const glu = page.locator('table.unmapped tbody tr', { hasText: 'GLU' });
      assert.match(await glu.innerText(), /Pier Hospital[\s\S]*Glucose, serum[\s\S]*1/);
      await failed.first().getByRole('button', { name: /Open message PI-1/ }).click();
      assert.match(await page.getByLabel('Raw message').innerText(), /^MSH\|/);
      await page.getByRole('button', { name: 'Replay' }).click();
      assert.match(await page.getByRole('status').filter({ hasText: 'Replayed' }).innerText(), /Replayed: processed \(acknowledgement AA\)/);
      const subscriptionRow = page.locator('table.subscriptions tbody tr', { hasText: 'notify new-result' });
      assert.match(await subscriptionRow.innerText(), /rest-hook\t[a-z-]+\t\d+\t\d+\t\d+/, 'status, delivered, backlog and dead letters from $status');
      const patients = await s.fhir('GET', 'Patient?identifier=urn:example:pier:mrn|P-1');
      assert.equal(patients.body.entry?.length, 1, 'the replayed message wrote its patient');
      assert.deepEqual(errors, []);
      await page.context().close();
    });

    it('a patient opts out; a clinician is then denied, and breaks the glass with a reason', async () => {
      const { page, errors } = await openPage(browser);
      await signIn(page, s.url, 'patient@example.org', PASSWORD, 'PATRQT');
      await page.getByRole('heading', { name: /^Results/ }).waitFor();
      const access = page.locator('table.disclosures tbody tr', { hasText: casey.fhirUser as string });
      await access.first().waitFor();
      assert.match(await access.first().innerText(), /TREAT/, 'the clinician\'s earlier access is listed, with its purpose');
      await checkView(page, 'patient-own-record');
      const denied = ORGANIZATIONS[2].name;
      await page.getByLabel('Deny one organization').selectOption({ label: denied });
      await page.getByRole('button', { name: 'Deny this organization' }).click();
      await page.getByRole('status').filter({ hasText: 'that organization may not see your record' }).waitFor();
      await page.locator('#my-consents-h').locator('..').getByText(`Do not share with ${denied}`).waitFor();
      await page.getByRole('button', { name: 'Opt out of sharing' }).click();
      await page.getByRole('status').filter({ hasText: 'your record is not shared' }).waitFor();
      await page.locator('#my-consents-h').locator('..').getByText('Do not share with anyone in the community').waitFor();
      await page.context().close();

      const clinician = await openPage(browser);
      await signIn(clinician.page, s.url, 'casey@example.org', PASSWORD, 'TREAT');
      await clinician.page.evaluate((id) => (location.hash = `#/patient/${id}`), goldenId);
      assert.match(await clinician.page.getByRole('alert').innerText(), /not available to you/);
      await checkView(clinician.page, 'patient-denied');
      await clinician.page.getByLabel('Reason').fill('Unconscious in the emergency department; medication history needed now');
      await clinician.page.getByRole('button', { name: 'Break the glass' }).click();
      await clinician.page.getByRole('heading', { name: /^Results/ }).waitFor();
      // The denied read is a 404 the browser reports on its console; nothing else may be.
      assert.deepEqual([...errors, ...clinician.errors.filter((e) => !/status of 404/.test(e))], []);
      await clinician.page.context().close();
    });

    it('a privacy officer finds the clinician\'s access in the audit log, reviews the break-the-glass, reads an opted-out patient\'s consents and disclosures and withdraws the opt-out', async () => {
      const { page, errors } = await openPage(browser);
      await signIn(page, s.url, 'priya@example.org', PASSWORD, 'HOPERAT');
      await page.getByLabel('Patient id').first().fill(goldenId);
      await page.getByRole('button', { name: 'Search the audit log' }).click();
      const rows = page.locator('table.audit tbody tr', { hasText: casey.fhirUser as string });
      await rows.first().waitFor();
      assert.match(await rows.first().innerText(), /TREAT/);
      const grant = page.locator('#btg-h').locator('..').locator('tbody tr', { hasText: 'Unconscious' });
      await grant.waitFor();
      await checkView(page, 'privacy');
      await grant.getByRole('button', { name: /Mark reviewed/ }).click();
      await grant.waitFor({ state: 'detached' });
      // The consents and accounting of disclosures of the patient who opted out above: the opt-out withholds
      // her record, not her consents or who saw it, from the privacy officer.
      const lookup = page.locator('#patient-privacy-h').locator('..');
      await lookup.getByLabel('Patient id').fill(person.id); // her own record, which her consents name
      await lookup.getByRole('button', { name: 'Show' }).click();
      const optOut = lookup.locator('tbody tr', { hasText: 'Do not share with anyone in the community' });
      await optOut.waitFor();
      await lookup.locator('table.disclosures tbody tr', { hasText: casey.fhirUser as string }).first().waitFor();
      await checkView(page, 'privacy-patient');
      // She phones to opt back in: the officer withdraws the opt-out for her.
      await optOut.getByRole('button', { name: 'Withdraw' }).click();
      await optOut.getByText('inactive').waitFor(); // the list as the server has it now
      assert.deepEqual(errors, []);
      await page.context().close();
    });
  });
}
