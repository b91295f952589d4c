import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { labelledFromCsv } from '../src/mpi/labelled-records.js';
import { PatientLinker } from '../src/mpi/patient-linker.js';
import { rebuildIndex } from '../src/mpi/rebuild.js';
import { BACKENDS } from './helpers/backends.js';
import { MR } from './helpers/people.js';
import { startMpiTestServer, type TestServer } from './helpers/server.js';

/**
 * Load-order independence (issue 16 item 5): the same records in two orders give the same enterprise
 * identities, through the API. Data: FEBRL data set 2 (bench/data/febrl, BSD-3-Clause: synthetic
 * Australian people with typing and phonetic errors, swapped and replaced names, missing values, up to
 * nine records a person), every record of the people among its first 400 rows (the code before the
 * re-clustering step split 5 of this sample's people differently in the two orders). Each record gets an MRN (its row) so that the two
 * stores' partitions can be compared by what the sources sent.
 */
const MRN_SYSTEM = 'urn:example:febrl:row';
const rows = readFileSync('bench/data/febrl/febrl_dataset2.csv', 'utf8').split('\n');
const people = new Set(rows.slice(1, 401).map((r) => /^rec-(\d+)/.exec(r)?.[1]));
const sample = labelledFromCsv([rows[0], ...rows.slice(1).filter((r) => people.has(/^rec-(\d+)/.exec(r)?.[1]))].join('\n'));
const records: Patient[] = sample.records.map((r, i) => ({ ...r.patient, identifier: [{ type: MR, system: MRN_SYSTEM, value: `row-${i}` }, ...(r.patient.identifier ?? [])] }));

/** The enterprises as sets of MRNs, read from the golden records (each carries its sources' identifiers). */
async function partition(s: TestServer): Promise<string[]> {
  const out: string[] = [];
  let next: string | undefined = 'Patient?_tag=https://tessera.dev/fhir/CodeSystem/mpi|golden&_count=200';
  while (next) {
    const res: { status: number; body: any } = await s.fhir('GET', next);
    assert.equal(res.status, 200);
    for (const e of res.body.entry ?? []) {
      const golden = e.resource as Patient;
      if (golden.active === false) continue;
      const mrns = (golden.identifier ?? []).filter((i) => i.system === MRN_SYSTEM).map((i) => i.value as string);
      out.push(mrns.sort().join(','));
    }
    const link = res.body.link?.find((l: any) => l.relation === 'next')?.url as string | undefined;
    next = link ? link.slice(link.indexOf('/fhir/') + '/fhir/'.length) : undefined;
  }
  return out.sort();
}

async function load(s: TestServer, patients: Patient[]): Promise<void> {
  for (let start = 0; start < patients.length; start += 50) {
    const entry = patients.slice(start, start + 50).map((resource) => ({ resource, request: { method: 'POST', url: 'Patient' } }));
    const res = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'batch', entry });
    assert.equal(res.status, 200);
    for (const e of res.body.entry) assert.match(e.response.status, /^201/, JSON.stringify(e.response));
  }
}

for (const backend of BACKENDS) {
  describe(`master patient index: load-order independence (${backend})`, () => {
    let inOrder: TestServer;
    let reversed: TestServer;
    before(async () => {
      for (const which of ['inOrder', 'reversed'] as const) {
        const s = await startMpiTestServer(backend);
        if (which === 'inOrder') inOrder = s;
        else reversed = s;
      }
    });
    after(async () => {
      await inOrder?.close();
      await reversed?.close();
    });

    it('the same records in file order and reversed give the same enterprises, incrementally and after a rebuild', async () => {
      await load(inOrder, records);
      await load(reversed, [...records].reverse());
      const [a, b] = [await partition(inOrder), await partition(reversed)];
      assert.ok(a.length < records.length, 'duplicates were linked');
      assert.equal(a.flatMap((p) => p.split(',')).length, records.length, 'every record in one identity');
      assert.deepEqual(a, b, 'incremental linking with re-clustering');
      for (const s of [inOrder, reversed]) await rebuildIndex(s.tessera.repo, s.tessera.repo.observerOf(PatientLinker) as PatientLinker);
      const [ra, rb] = [await partition(inOrder), await partition(reversed)];
      assert.deepEqual(ra, rb, 'tessera mpi rebuild');
      // Ruled by the truth: no identity holds two people.
      const personOf = sample.records.map((r) => r.person);
      for (const p of ra) assert.equal(new Set(p.split(',').map((i) => personOf[Number(i.slice(4))])).size, 1, `one person in ${p}`);
    });
  });
}
