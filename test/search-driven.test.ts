import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Observation } from '@medplum/fhirtypes';
import { Random } from '../src/synthetic/random.js';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Searches that name the resources their matches point at (`patient=`, `subject=`) beside other filters:
 * the search engine drives them from that reference's index rows and probes each row's own index rows for
 * the other filters (src/search/search-engine.ts, drivenRows), where the engines used to list every match
 * of each filter store-wide. Each answer is compared with the filters evaluated here, on the generated
 * data, page by page, sorted, counted, with OR values, repeated values and :not.
 *
 * Where the data come from: generated here, seeded: five patients with 14 laboratory Observations each
 * (HbA1c, glucose, LDL: LOINC codes; made-up values and days in 2022-2025).
 */
const CODES = ['4548-4', '2345-7', '13457-7'];

interface Fact {
  id: string;
  patient: string;
  code: string;
  day: string;
  value: number;
}

for (const backend of BACKENDS) {
  describe(`searches driven by a reference, with the other filters probed per row (${backend})`, () => {
    let s: TestServer;
    const patients: string[] = [];
    let facts: Fact[] = [];

    /** Every match of a search, following its next links; fails on a page that repeats a match. */
    const allMatches = async (query: string): Promise<string[]> => {
      const out: string[] = [];
      let path: string | undefined = query;
      while (path) {
        const res: { status: number; body: Bundle } = await s.fhir<Bundle>('GET', path);
        assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
        out.push(...(res.body.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource?.id as string));
        const next = res.body.link?.find((l) => l.relation === 'next')?.url;
        path = next ? next.slice(next.indexOf('/fhir/') + '/fhir/'.length) : undefined;
      }
      assert.equal(new Set(out).size, out.length, `${query}: a match repeated across pages`);
      return out;
    };
    const byId = (list: Fact[]) => list.map((f) => f.id).sort();

    before(async () => {
      s = await startTestServer(backend);
      const random = new Random(20261207);
      for (let i = 0; i < 5; i++) {
        const res = await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: `Driven${i}`, given: ['Test'] }], birthDate: `19${50 + i}-01-0${i + 1}` });
        patients.push(res.body.id);
      }
      const entries: Observation[] = [];
      for (const patient of patients) {
        for (let n = 0; n < 14; n++) {
          const day = `${random.int(2022, 2025)}-${String(random.int(1, 12)).padStart(2, '0')}-${String(random.int(1, 28)).padStart(2, '0')}`;
          entries.push({
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: random.pick(CODES) }] },
            subject: { reference: `Patient/${patient}` },
            effectiveDateTime: day,
            valueQuantity: { value: random.int(30, 120) / 10, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
          });
        }
      }
      const res = await s.fhir<Bundle>('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries.map((resource) => ({ resource, request: { method: 'POST', url: 'Observation' } })) });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
      facts = (res.body.entry ?? []).map((e, i) => {
        const o = entries[i];
        return { id: /Observation\/([^/]+)/.exec(e.response?.location ?? '')?.[1] as string, patient: o.subject?.reference?.split('/')[1] as string, code: o.code.coding?.[0].code as string, day: o.effectiveDateTime as string, value: o.valueQuantity?.value as number };
      });
    });
    after(async () => s?.close());

    it('a patient and a code; two patients, two codes and a date; a date range; :not; repeated patients and a quantity', async () => {
      const [p0, p1, p2, p3] = patients;
      const cases: [string, (f: Fact) => boolean][] = [
        [`Observation?patient=${p0}&code=http://loinc.org|4548-4`, (f) => f.patient === p0 && f.code === '4548-4'],
        [`Observation?patient=${p0},${p1}&code=4548-4,2345-7&date=ge2024-01-01`, (f) => [p0, p1].includes(f.patient) && f.code !== '13457-7' && f.day >= '2024-01-01'],
        [`Observation?subject=Patient/${p2}&date=ge2023-01-01&date=lt2024-07-01`, (f) => f.patient === p2 && f.day >= '2023-01-01' && f.day < '2024-07-01'],
        [`Observation?patient=${p3}&code:not=4548-4`, (f) => f.patient === p3 && f.code !== '4548-4'],
        [`Observation?patient=${p0},${p0}&value-quantity=gt8`, (f) => f.patient === p0 && f.value > 8],
        [`Observation?patient=${p1}&code=13457-7&date=lt2022-01-01`, () => false],
        [`Observation?patient=${p2},${p3}`, (f) => [p2, p3].includes(f.patient)],
      ];
      for (const [query, meets] of cases) {
        const expected = byId(facts.filter(meets));
        assert.deepEqual((await allMatches(`${query}&_count=3`)).sort(), expected, query);
        // The first page in id order (no sort asked): the engine's default order.
        assert.deepEqual(await allMatches(`${query}&_count=100`), expected, `${query}: id order`);
        const total = await s.fhir<Bundle>('GET', `${query}&_total=accurate&_count=2`);
        assert.equal(total.body.total, expected.length, `${query}: _total`);
        const count = await s.fhir<Bundle>('GET', `${query}&_summary=count`);
        assert.equal(count.body.total, expected.length, `${query}: _summary=count`);
      }
      assert.ok(facts.filter((f) => f.patient === p0 && f.code === '4548-4').length > 0, 'the generated data hold the first case');
    });

    it('sorted by date, newest first, across pages', async () => {
      const [, p1, , , p4] = patients;
      const expected = facts
        .filter((f) => [p1, p4].includes(f.patient) && f.code === '2345-7')
        .sort((a, b) => (a.day === b.day ? (a.id < b.id ? -1 : 1) : a.day < b.day ? 1 : -1))
        .map((f) => f.id);
      assert.ok(expected.length > 3);
      assert.deepEqual(await allMatches(`Observation?patient=${p1},${p4}&code=2345-7&_sort=-date&_count=3`), expected);
    });
  });
}
