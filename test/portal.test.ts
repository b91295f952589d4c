import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { directoryBundle, ORGANIZATIONS, patientBundles } from '../src/synthetic/community.js';
import { addUser } from '../src/users/user-directory.js';
import { BACKENDS } from './helpers/backends.js';
import { checkView, launchBrowser, openPage, signIn } from './helpers/portal-browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// Data: the demo community's deterministic synthetic generator (src/synthetic/community.ts: three
// organizations, patients with encounters, vitals, labs, conditions, medications), plus, written here, the
// same person's record at a second organization (another MRN) with three HbA1c results (LOINC 4548-4,
// reference range 4–5.6 %), the way a clinic's lab feed would send them. Users are made up (example.org).

const PASSWORD = 'correct horse battery staple';
const HBA1C = { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }], text: 'Hemoglobin A1c/Hemoglobin.total in Blood' };

for (const backend of BACKENDS) {
  describe(`portal in Chromium (${backend})`, () => {
    let s: TestServer;
    let browser: Browser;
    let person: any;
    let otherMrn: string;
    let otherOrg: (typeof ORGANIZATIONS)[number];

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
      await addUser(s.tessera.repo, { name: 'Casey Clinician', email: 'casey@example.org', role: 'clinician', organization: ORGANIZATIONS[0].id, password: PASSWORD });
    });

    after(async () => {
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
      const { page, errors, urls } = await openPage(browser);
      await page.goto(`${s.url}/`);
      await checkView(page, 'sign-in');
      await signIn(page, s.url, 'casey@example.org', PASSWORD, 'TREAT');
      assert.match(await page.locator('header').innerText(), /clinician · purpose TREAT/);
      await checkView(page, 'patient-search');

      await page.getByLabel('Medical record number').fill(otherMrn);
      await page.getByLabel('Medical record number').press('Enter');
      const row = page.locator('table.results tbody tr');
      await row.first().waitFor();
      assert.equal(await row.count(), 1, 'one person for the MRN');
      const text = await row.first().innerText();
      assert.match(text, new RegExp(person.birthDate));
      assert.match(text, new RegExp(person.gender));
      assert.match(text, new RegExp(otherOrg.name.replace(/'/g, '.')), 'the other organization is listed as a source');
      await checkView(page, 'patient-search-results');

      await row.first().getByRole('link').click();
      await page.getByRole('heading', { name: /^Results/ }).waitFor();
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
      assert.match(await dialog.innerText(), /"value": 8.2/);
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });

      // Nothing about the patient in a query string, nothing kept in the browser's storage, no console errors (CSP).
      const searchTerms = [otherMrn, person.birthDate, person.name[0].family];
      for (const u of urls) {
        const query = new URL(u).search;
        for (const term of searchTerms) assert.ok(!query.includes(encodeURIComponent(term)) && !query.includes(term), `${term} in the query string of ${u}`);
      }
      assert.deepEqual(await page.evaluate(() => [localStorage.length, sessionStorage.length]), [0, 0]);
      assert.deepEqual(errors, []);
      await page.context().close();
    });
  });
}
