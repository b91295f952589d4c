import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Parameters, ParametersParameter, Patient } from '@medplum/fhirtypes';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { person } from './helpers/people.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** The data steward's API, $match, PIXm and PDQm, through the real HTTP server. */

const params = (values: Record<string, string>): Parameters => ({
  resourceType: 'Parameters',
  parameter: Object.entries(values).map(([name, value]) => (name === 'patient' || name === 'other' || name === 'target' || name === 'source' ? { name, valueReference: { reference: `Patient/${value}` } } : { name, valueString: value })),
});
const part = (parts: ParametersParameter[] | undefined, name: string) => parts?.find((p) => p.name === name);
/** A surname per test, far enough from the others that no two tests' people look alike. */
const SURNAMES: Record<string, string> = { Q: 'Marchand', R: 'Delacroix', A: 'Fontaine', X: 'Beauregard', P: 'Adeyemi' };
/** Twins from two sources: everything shared but the first name: never a link, not even a question. */
const twins = (tag: string) => [
  person('hospital-a', `tw-${tag}-1`, 'Amara', `${SURNAMES[tag]}-Okafor`, '1992-02-14', { gender: 'female' }),
  person('clinic-b', `tw-${tag}-2`, 'Chioma', `${SURNAMES[tag]}-Okafor`, '1992-02-14', { gender: 'female' }),
];
/** One person from two sources with a one-digit birth-date slip and another address: a possible match. */
const slipped = (tag: string) => [
  person('hospital-a', `sl-${tag}-1`, 'Lucien', SURNAMES[tag], '1958-06-21', { telecom: [] }),
  person('clinic-b', `sl-${tag}-2`, 'Lucien', SURNAMES[tag], '1958-06-27', { telecom: [], address: [{ line: ['9 Harbour Road'], city: 'Salem', postalCode: '01970' }] }),
];

for (const backend of BACKENDS) {
  describe(`master patient index: stewardship and standard APIs (${backend})`, () => {
    let s: TestServer;
    before(async () => (s = await startTestServer(backend)));
    after(async () => s?.close());

    const create = async (p: Patient): Promise<string> => {
      const res = await s.fhir('POST', 'Patient', p);
      assert.ok(res.status === 201 || res.status === 200, JSON.stringify(res.body));
      return res.body.id;
    };
    const enterpriseOf = async (sourceId: string): Promise<Patient> => {
      const res = await s.fhir('GET', `Patient?link=Patient/${sourceId}`);
      assert.equal(res.body.entry?.length, 1, `exactly one golden record links Patient/${sourceId}`);
      return res.body.entry[0].resource;
    };
    const linked = (golden: Patient) => (golden.link ?? []).filter((l) => l.type === 'seealso').map((l) => l.other.reference).sort();
    const op = async (name: string, values: Record<string, string>, headers?: Record<string, string>) => s.fhir('POST', `Patient/${name}`, params(values), headers);
    const openPairs = async (): Promise<ParametersParameter[][]> => {
      const res = await s.fhir('GET', 'Patient/$mpi-review-queue?_count=500');
      assert.equal(res.status, 200);
      return (res.body.parameter as ParametersParameter[]).filter((p) => p.name === 'pair').map((p) => p.part ?? []);
    };
    const pairOf = (pairs: ParametersParameter[][], a: string, b: string) =>
      pairs.find((p) => [part(p, 'patient')?.valueReference?.reference, part(p, 'other')?.valueReference?.reference].sort().join() === [`Patient/${a}`, `Patient/${b}`].sort().join());

    it('lists possible matches with their score and per-field reasons, and links nothing; twins are neither', async () => {
      const [a, b] = [await create(slipped('Q')[0]), await create(slipped('Q')[1])];
      assert.notEqual((await enterpriseOf(a)).id, (await enterpriseOf(b)).id);
      const pair = pairOf(await openPairs(), a, b);
      assert.ok(pair, 'the pair is in the review queue');
      assert.ok((part(pair, 'score')?.valueDecimal ?? 0) >= 14);
      const contributions = pair.filter((p) => p.name === 'contribution').map((c) => `${part(c.part, 'field')?.valueCode}:${part(c.part, 'level')?.valueCode}`);
      assert.ok(contributions.includes('birthDate:one-digit') && contributions.includes('postalCode:different'), contributions.join());
      const [ta, tb] = [await create(twins('Q')[0]), await create(twins('Q')[1])];
      assert.notEqual((await enterpriseOf(ta)).id, (await enterpriseOf(tb)).id);
      assert.equal(pairOf(await openPairs(), ta, tb), undefined, 'twins (a first name that is no form of the other) are not a question for a steward');
    });

    it('reject: the pair leaves the queue and stays apart when either source sends the record again', async () => {
      const [pa, pb] = slipped('R');
      const [a, b] = [await create(pa), await create(pb)];
      assert.ok(pairOf(await openPairs(), a, b));
      const res = await op('$mpi-review', { patient: a, other: b, decision: 'reject', reason: 'different people, checked with both clinics' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(pairOf(await openPairs(), a, b), undefined);
      // Re-sent with the birth date and address of the other record: it would link at once, were it not ruled apart.
      assert.equal((await s.fhir('POST', 'Patient', { ...pb, birthDate: pa.birthDate, address: pa.address })).status, 200);
      assert.notEqual((await enterpriseOf(a)).id, (await enterpriseOf(b)).id);
      assert.equal(pairOf(await openPairs(), a, b), undefined, 'a ruled pair does not come back to the queue');
      const rejected = await s.fhir('GET', 'Patient/$mpi-review-queue?status=rejected');
      const ruled = pairOf((rejected.body.parameter as ParametersParameter[]).filter((p) => p.name === 'pair').map((p) => p.part ?? []), a, b);
      assert.equal(part(ruled, 'reason')?.valueString, 'different people, checked with both clinics');
      assert.ok(part(ruled, 'decidedBy')?.valueString);
    });

    it('accept: the two records become one enterprise identity, and the event names the steward and the reason', async () => {
      const [a, b] = [await create(slipped('A')[0]), await create(slipped('A')[1])];
      assert.ok(pairOf(await openPairs(), a, b), 'a possible match first');
      const res = await op('$mpi-review', { patient: a, other: b, decision: 'accept', reason: 'same person, birth date typo at clinic B' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const golden = await enterpriseOf(a);
      assert.deepEqual(linked(golden), [`Patient/${a}`, `Patient/${b}`].sort());
      assert.equal((await enterpriseOf(b)).id, golden.id);
      const events = await s.fhir('GET', `Patient/$mpi-events?enterprise=${golden.id}&action=review-accepted`);
      const [event] = (events.body.parameter as ParametersParameter[]).map((e) => e.part);
      assert.equal(part(event, 'reason')?.valueString, 'same person, birth date typo at clinic B');
      assert.match(part(event, 'actor')?.valueString ?? '', /^[0-9a-f-]{36}$/, 'the client id of the token');
    });

    it('unlink takes a record out for good; link puts a record into another enterprise', async () => {
      const a = await create(person('hospital-a', 'ul-1', 'Ingrid', 'Solberg', '1970-10-02', { gender: 'female' }));
      const b = await create(person('clinic-b', 'ul-2', 'Ingrid', 'Solberg', '1970-10-02', { gender: 'female' }));
      const together = await enterpriseOf(a);
      assert.deepEqual(linked(together), [`Patient/${a}`, `Patient/${b}`].sort(), 'auto-linked');
      assert.equal((await op('$mpi-unlink', { patient: b, reason: 'different person, same name' })).status, 200);
      assert.deepEqual(linked(await enterpriseOf(a)), [`Patient/${a}`]);
      const apart = await enterpriseOf(b);
      assert.notEqual(apart.id, together.id);
      assert.equal((await s.fhir('POST', 'Patient', person('clinic-b', 'ul-2', 'Ingrid', 'Solberg', '1970-10-02', { gender: 'female' }))).status, 200);
      assert.equal((await enterpriseOf(b)).id, apart.id, 'matching does not undo an unlink');
      assert.equal((await op('$mpi-unlink', { patient: a })).status, 409, 'nothing to unlink from a record alone');

      assert.equal((await op('$mpi-link', { patient: b, target: together.id as string, reason: 'it was her after all' })).status, 200);
      assert.deepEqual(linked(await enterpriseOf(b)), [`Patient/${a}`, `Patient/${b}`].sort());
      const emptied = await s.fhir('GET', `Patient/${apart.id}`);
      assert.equal(emptied.body.active, false);
      assert.equal(emptied.body.link?.[0].type, 'replaced-by');
    });

    it('merge then unmerge restores both enterprise identities and their golden records', async () => {
      const a = await create(person('hospital-a', 'mg-1', 'Priya', 'Raman', '1985-01-09', { gender: 'female' }));
      const b = await create(person('clinic-b', 'mg-2', 'Priya', 'Raman-Iyer', '1985-09-01', { gender: 'female', telecom: [{ system: 'phone', value: '(413) 555-0101' }], address: [] }));
      const c = await create(person('lab-c', 'mg-3', 'Priya', 'Raman-Iyer', '1985-09-01', { gender: 'female', telecom: [{ system: 'phone', value: '(413) 555-0101' }], address: [] }));
      const [first, second] = [await enterpriseOf(a), await enterpriseOf(b)];
      assert.notEqual(first.id, second.id);
      assert.deepEqual(linked(second), [`Patient/${b}`, `Patient/${c}`].sort());
      const merged = await op('$mpi-merge', { source: second.id as string, target: first.id as string, reason: 'married name' });
      assert.equal(merged.status, 200, JSON.stringify(merged.body));
      assert.deepEqual(linked(await enterpriseOf(b)), [`Patient/${a}`, `Patient/${b}`, `Patient/${c}`].sort());
      assert.equal((await enterpriseOf(c)).id, first.id);
      const pix = await s.fhir('GET', `Patient/$ihe-pix?sourceIdentifier=urn:example:hospital-a:mrn|mg-1`);
      assert.equal(pix.body.parameter.filter((p: ParametersParameter) => p.name === 'targetId').length, 3, 'enterprise id and the two records merged in');

      const unmerged = await op('$mpi-unmerge', { source: second.id as string, reason: 'merged the wrong Priya' });
      assert.equal(unmerged.status, 200, JSON.stringify(unmerged.body));
      const [afterFirst, afterSecond] = [await enterpriseOf(a), await enterpriseOf(b)];
      assert.equal(afterFirst.id, first.id);
      assert.equal(afterSecond.id, second.id);
      assert.deepEqual(linked(afterFirst), linked(first));
      assert.deepEqual(linked(afterSecond), linked(second));
      assert.equal(afterSecond.active, true);
      assert.deepEqual(afterSecond.name, second.name);
      assert.equal((await op('$mpi-unmerge', { source: second.id as string })).status, 409, 'not merged any more');
    });

    it('refuses bad steward input with an OperationOutcome, and decisions without update rights', async () => {
      const [a, b] = [await create(slipped('X')[0]), await create(slipped('X')[1])];
      const bad = await op('$mpi-review', { patient: a, other: b, decision: 'maybe' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.resourceType, 'OperationOutcome');
      assert.equal((await op('$mpi-review', { patient: a, other: 'no-such-record', decision: 'reject' })).status, 404);
      assert.equal((await s.fhir('POST', 'Patient/$mpi-review', { resourceType: 'Patient' })).status, 400);
      const reader = await s.tokenFor('system/Patient.rs');
      assert.equal((await op('$mpi-review', { patient: a, other: b, decision: 'accept' }, { authorization: `Bearer ${reader}` })).status, 403);
      assert.ok(pairOf(await openPairs(), a, b), 'the pair is still open');
      assert.equal((await s.fhir('GET', 'Patient/$mpi-review-queue', undefined, { authorization: `Bearer ${reader}` })).status, 200);
    });

    it('two sources sending the same person at the same moment end in one enterprise identity', async () => {
      for (let i = 0; i < 5; i++) {
        const family = `Concurrent${String.fromCharCode(65 + i)}`;
        const [a, b] = await Promise.all([
          s.fhir('POST', 'Patient', person('hospital-a', `cc-${i}`, 'Mateo', family, '1999-12-0' + (i + 1))),
          s.fhir('POST', 'Patient', person('clinic-b', `cc-${i}`, 'Mateo', family, '1999-12-0' + (i + 1))),
        ]);
        assert.deepEqual([a.status, b.status], [201, 201]);
        assert.equal((await enterpriseOf(a.body.id)).id, (await enterpriseOf(b.body.id)).id);
      }
    });

    it('Patient/$match grades candidates and returns enterprise records', async () => {
      const a = await create(person('hospital-a', 'mt-1', 'Yusuf', 'Demir', '1961-04-30'));
      await create(person('clinic-b', 'mt-2', 'Yusuf', 'Demir', '1961-04-30'));
      const query = (resource: Patient, extra: ParametersParameter[] = []): Parameters => ({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource }, ...extra] });
      const exact = await s.fhir('POST', 'Patient/$match', query({ resourceType: 'Patient', name: [{ family: 'Demir', given: ['Yusuf'] }], birthDate: '1961-04-30', gender: 'male', telecom: [{ system: 'phone', value: '617 555 0134' }] }));
      assert.equal(exact.status, 200, JSON.stringify(exact.body));
      assert.equal(exact.body.type, 'searchset');
      const [best] = exact.body.entry;
      assert.equal(best.resource.id, (await enterpriseOf(a)).id, 'the enterprise record, not one of its sources');
      assert.equal(best.search.extension[0].valueCode, 'certain');
      assert.ok(best.search.score > 0.9 && best.search.score <= 1);
      const partial = await s.fhir('POST', 'Patient/$match', query({ resourceType: 'Patient', name: [{ family: 'Demir', given: ['Yusuf'] }], birthDate: '1961-04-20' }));
      assert.ok(['probable', 'possible'].includes(partial.body.entry?.[0]?.search.extension[0].valueCode), JSON.stringify(partial.body));
      const certainOnly = await s.fhir('POST', 'Patient/$match', query({ resourceType: 'Patient', name: [{ family: 'Demir', given: ['Yusuf'] }], birthDate: '1961-04-20' }, [{ name: 'onlyCertainMatches', valueBoolean: true }]));
      assert.equal(certainOnly.body.total, 0);
      assert.equal((await s.fhir('POST', 'Patient/$match', query({ resourceType: 'Observation' } as never))).status, 400);
    });

    it('PIXm $ihe-pix returns only confirmed links, filtered by target domain, with the ITI-83 errors', async () => {
      const a = await create(person('hospital-a', 'px-1', 'Hana', 'Kobayashi', '1979-08-08', { gender: 'female' }));
      const b = await create(person('clinic-b', 'px-2', 'Hana', 'Kobayashi', '1979-08-08', { gender: 'female' }));
      const [ta, tb] = twins('P');
      const twinA = await create({ ...ta, identifier: [{ ...ta.identifier![0], value: 'px-3' }] });
      await create({ ...tb, identifier: [{ ...tb.identifier![0], value: 'px-4' }] });
      const golden = await enterpriseOf(a);
      const all = await s.fhir('GET', 'Patient/$ihe-pix?sourceIdentifier=urn:example:hospital-a:mrn|px-1');
      assert.equal(all.status, 200);
      const targets = (all.body.parameter as ParametersParameter[]).map((p) => p.valueIdentifier ? `${p.valueIdentifier.system}|${p.valueIdentifier.value}` : p.valueReference?.reference).sort();
      assert.deepEqual(targets, [`Patient/${b}`, `Patient/${golden.id}`, 'urn:example:clinic-b:mrn|px-2', `urn:tessera:enterprise-id|${golden.id}`].sort());
      const filtered = await s.fhir('GET', 'Patient/$ihe-pix?sourceIdentifier=urn:example:hospital-a:mrn|px-1&targetSystem=urn:example:clinic-b:mrn');
      assert.deepEqual(filtered.body.parameter.map((p: ParametersParameter) => p.name), ['targetIdentifier', 'targetId']);
      const twin = await s.fhir('GET', 'Patient/$ihe-pix?sourceIdentifier=urn:example:hospital-a:mrn|px-3&targetSystem=urn:example:clinic-b:mrn');
      assert.equal(twin.status, 200);
      assert.equal(twin.body.parameter?.length ?? 0, 0, `a possible match is not a link (${twinA})`);
      const posted = await s.fhir('POST', 'Patient/$ihe-pix', { resourceType: 'Parameters', parameter: [{ name: 'sourceIdentifier', valueString: 'urn:example:clinic-b:mrn|px-2' }] });
      assert.ok(posted.body.parameter.some((p: ParametersParameter) => p.valueReference?.reference === `Patient/${a}`));
      const unknownValue = await s.fhir('GET', 'Patient/$ihe-pix?sourceIdentifier=urn:example:hospital-a:mrn|nobody');
      assert.equal(unknownValue.status, 404);
      assert.equal(unknownValue.body.issue[0].diagnostics, 'sourceIdentifier Patient Identifier not found');
      const unknownDomain = await s.fhir('GET', 'Patient/$ihe-pix?sourceIdentifier=urn:example:nowhere|px-1');
      assert.equal(unknownDomain.status, 400);
      assert.equal(unknownDomain.body.issue[0].code, 'code-invalid');
      const unknownTarget = await s.fhir('GET', 'Patient/$ihe-pix?sourceIdentifier=urn:example:hospital-a:mrn|px-1&targetSystem=urn:example:nowhere');
      assert.equal(unknownTarget.status, 403);
      assert.equal((await s.fhir('GET', 'Patient/$ihe-pix?sourceIdentifier=px-1')).status, 400);
    });

    it('PDQm: demographics queries find the source records, each with its own identifier', async () => {
      const a = await create(person('hospital-a', 'pd-1', 'Zofia', 'Wiśniewska', '1948-03-17', { gender: 'female' }));
      const b = await create(person('clinic-b', 'pd-2', 'Zofia', 'Wisniewska', '1948-03-17', { gender: 'female' }));
      const ids = async (query: string) => ((await s.fhir('GET', `Patient?${query}`)).body.entry ?? []).map((e: { resource: Patient }) => e.resource.id).sort();
      assert.deepEqual(await ids('family=wisniewska&given=zofia&birthdate=1948-03-17&gender=female'), [a, b].sort(), 'accents folded, golden record left out');
      assert.deepEqual(await ids('identifier=urn:example:clinic-b:mrn|pd-2'), [b]);
      assert.deepEqual(await ids('family:exact=Wiśniewska&address-postalcode=02139'), [a]);
      assert.deepEqual(await ids('telecom=(617) 555-0134&family:exact=Wisniewska'), [b]);
    });
  });
}

describe('master patient index turned off', () => {
  it('answers its operations with 501, saying so', async () => {
    const store = testConfig(BACKENDS[0]);
    store.config.mpi = false;
    const s = await startTestServer(BACKENDS[0], store);
    try {
      const res = await s.fhir('GET', 'Patient/$mpi-review-queue');
      assert.equal(res.status, 501);
      assert.match(res.body.issue[0].diagnostics, /TESSERA_MPI/);
    } finally {
      await s.close();
    }
  });
});
