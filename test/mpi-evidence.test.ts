import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { compareFeatures, FIELD_LEVELS, FIELDS, type Field, type Level } from '../src/mpi/comparison.js';
import { personFeatures } from '../src/mpi/features.js';
import { labelledFromCsv } from '../src/mpi/labelled-records.js';
import { normalizeIdentifier } from '../src/mpi/identifier-formats.js';
import { BACKENDS } from './helpers/backends.js';
import { MR, person } from './helpers/people.js';
import { startMpiTestServer, type TestServer } from './helpers/server.js';

/**
 * Issue 16: evidence over vetoes, identifiers of every system, bounded work for a shared demographic,
 * warnings, MRN reuse and $match. People are synthetic (test/helpers/people.ts); the labelled sample is
 * the head of FEBRL data set 1 (bench/data/febrl, BSD-3-Clause, synthetic Australian people).
 */

const DL = (value: string) => ({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'DL' }] }, system: 'urn:example:nsw-driver-licence', value });
const vector = (a: Patient, b: Patient) => compareFeatures(personFeatures(a), personFeatures(b));

describe('comparison levels for registration errors', () => {
  const base = person('a', '1', 'Katelin', 'Moreau', '1971-05-09');
  it('given and family swapped are compared crosswise', () => {
    const v = vector(base, person('b', '2', 'Moreau', 'Katelin', '1971-05-09'));
    assert.equal(v.firstName, 'exact');
    assert.equal(v.surname, 'exact');
  });
  it('a space or hyphen inserted in a given name is the same name', () => {
    assert.equal(vector(base, person('b', '2', 'Kate Lin', 'Moreau', '1971-05-09')).firstName, 'exact');
    assert.equal(vector(base, person('b', '2', 'Kate-lin', 'Moreau', '1971-05-09')).firstName, 'exact');
  });
  it('one edit, nickname, initial, sound-alike, different', () => {
    assert.equal(vector(base, person('b', '2', 'Katelyn', 'Moreau', '1971-05-09')).firstName, 'similar');
    assert.equal(vector(person('a', '1', 'William', 'Moreau', '1971-05-09'), person('b', '2', 'Bill', 'Moreau', '1971-05-09')).firstName, 'nickname');
    assert.equal(vector(base, person('b', '2', 'K', 'Moreau', '1971-05-09')).firstName, 'initial');
    assert.equal(vector(base, person('b', '2', 'Agnes', 'Moreau', '1971-05-09')).firstName, 'different');
  });
  it('birth dates: transposed day and month, one digit, year only, different', () => {
    assert.equal(vector(base, person('b', '2', 'Katelin', 'Moreau', '1971-09-05')).birthDate, 'transposed');
    assert.equal(vector(base, person('b', '2', 'Katelin', 'Moreau', '1971-05-08')).birthDate, 'one-digit');
    assert.equal(vector(base, person('b', '2', 'Katelin', 'Moreau', '1971-11-23')).birthDate, 'year-only');
    assert.equal(vector(base, person('b', '2', 'Katelin', 'Moreau', '1948-11-23')).birthDate, 'different');
  });
  it('identifiers of any system are compared under the same system only, normalised', () => {
    const withDl = (value: string) => person('b', '2', 'Katelin', 'Moreau', '1971-05-09', { identifier: [DL(value)] });
    assert.equal(vector(withDl('AB 123-456'), withDl('ab123456')).identifier, 'exact');
    assert.equal(vector(withDl('AB123456'), withDl('AB123457')).identifier, 'one-edit');
    assert.equal(vector(withDl('AB123456'), withDl('ZX998877')).identifier, 'different');
    const other = person('c', '3', 'Katelin', 'Moreau', '1971-05-09', { identifier: [{ ...DL('AB123456'), system: 'urn:example:other-licence' }] });
    assert.equal(vector(withDl('AB123456'), other).identifier, 'missing');
  });
  it('identifiers are normalised as their system writes them: free formats folded, unknown systems as written', () => {
    const typed = (code: string, system: string, value: string) => ({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code }] }, system, value });
    // Each record keeps its MR-typed record number, so that the identifier under test is a person's.
    const withMrn = (source: string, id: object) => person(source, '1', 'Katelin', 'Moreau', '1971-05-09', { identifier: [{ type: MR, system: `urn:example:${source}:mrn`, value: '1' }, id] });
    const level = (a: object, b: object) => vector(withMrn('a', a), withMrn('b', b)).identifier;
    const nhs = (value: string) => ({ system: 'https://fhir.nhs.uk/Id/nhs-number', value });
    assert.equal(level(nhs('943 476 5919'), nhs('943-476-5919')), 'exact', 'NHS number: spaces and hyphens are not part of it');
    assert.equal(normalizeIdentifier(nhs('943 476 591X')), undefined, 'a letter in a digits-only number: no such number');
    assert.equal(normalizeIdentifier(nhs('943 476 591')), undefined, 'nine digits: no NHS number');
    const mbi = (value: string) => ({ system: 'http://hl7.org/fhir/sid/us-mbi', value });
    assert.equal(level(mbi('1EG4-TE5-MK73'), mbi('1eg4te5mk73')), 'exact', 'MBI: case and hyphens folded');
    const state = (value: string) => ({ system: 'urn:oid:2.16.840.1.113883.4.3.25', value });
    assert.equal(level(state('S123 4567 8901'), state('s12345678901')), 'exact', "a state driver's licence, listed by its OID prefix");
    const member = (value: string) => typed('MB', 'urn:example:insurer:member', value);
    assert.equal(level(member('000123-45'), member('12345')), 'exact', 'member number: separators and leading zeros carry no meaning');
    const opaque = (value: string) => ({ system: 'urn:example:opaque-token', value });
    assert.equal(level(opaque('ab-12x'), opaque('AB12X')), 'different', 'an untyped system not listed: compared as written');
    assert.equal(level(opaque(' AB12X '), opaque('AB12X')), 'exact', 'trimmed all the same');
  });
  it('locality and e-mail', () => {
    const v = vector(
      person('a', '1', 'Katelin', 'Moreau', '1971-05-09', { telecom: [{ system: 'email', value: 'K.Moreau@Example.org ' }] }),
      person('b', '2', 'Katelin', 'Moreau', '1971-05-09', { telecom: [{ system: 'email', value: 'k.moreau@example.org' }], address: [{ city: 'CAMBRIDGE' }] }),
    );
    assert.equal(v.email, 'shared');
    assert.equal(v.locality, 'same');
  });
  it('every level of every field is reached by the registration error it stands for', () => {
    // A pair per level, so that a level added to FIELD_LEVELS without a case here fails this test.
    const other = (given: string, family: string, birthDate: string, extra: Partial<Patient> = {}) => person('b', '2', given, family, birthDate, extra);
    const same = (extra: Partial<Patient>) => other('Katelin', 'Moreau', '1971-05-09', extra);
    const both = (extra: Partial<Patient>): [Patient, Patient] => [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', extra), same(extra)];
    const ssn = (value: string) => ({ identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value }] });
    const phone = (value: string) => ({ telecom: [{ system: 'phone' as const, value }] });
    const email = (value: string) => ({ telecom: [{ system: 'email' as const, value }] });
    const noPostalCode = (city: string) => ({ address: [{ line: ['12 Elm Street'], city }] });
    const cases: { [F in Field]: Record<Level<F>, Patient | [Patient, Patient]> } = {
      surname: { exact: same({}), 'compound-part': other('Katelin', 'Moreau-Blanc', '1971-05-09'), similar: other('Katelin', 'Moreaux', '1971-05-09'), 'sound-alike': other('Katelin', 'Morrow', '1971-05-09'), different: other('Katelin', 'Agarwal', '1971-05-09'), missing: same({ name: [{ given: ['Katelin'] }] }) },
      firstName: { exact: same({}), nickname: [person('a', '1', 'William', 'Moreau', '1971-05-09'), other('Bill', 'Moreau', '1971-05-09')], similar: other('Katelyn', 'Moreau', '1971-05-09'), initial: other('K', 'Moreau', '1971-05-09'), 'sound-alike': other('Catlin', 'Moreau', '1971-05-09'), different: other('Agnes', 'Moreau', '1971-05-09'), missing: same({ name: [{ family: 'Moreau' }] }) },
      middleInitial: { same: both({ name: [{ family: 'Moreau', given: ['Katelin', 'Ann'] }] }), different: [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', { name: [{ family: 'Moreau', given: ['Katelin', 'Ann'] }] }), same({ name: [{ family: 'Moreau', given: ['Katelin', 'Beth'] }] })], missing: same({}) },
      birthDate: { exact: same({}), transposed: other('Katelin', 'Moreau', '1971-09-05'), 'one-digit': other('Katelin', 'Moreau', '1971-05-08'), 'year-only': other('Katelin', 'Moreau', '1971-11-23'), different: other('Katelin', 'Moreau', '1948-11-23'), missing: same({ birthDate: undefined }) },
      gender: { same: same({}), different: same({ gender: 'female' }), missing: same({ gender: 'unknown' }) },
      ssn: { exact: both(ssn('219-45-6781')), 'one-edit': [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', ssn('219-45-6781')), same(ssn('219-45-6871'))], different: [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', ssn('219-45-6781')), same(ssn('412-77-3020'))], missing: same(ssn('219-45-6781')) },
      identifier: { exact: both({ identifier: [DL('AB123456')] }), 'one-edit': [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', { identifier: [DL('AB123456')] }), same({ identifier: [DL('AB123457')] })], different: [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', { identifier: [DL('AB123456')] }), same({ identifier: [DL('ZX998877')] })], missing: same({ identifier: [DL('AB123456')] }) },
      phone: { shared: same({}), different: same(phone('(508) 555-0199')), missing: same({ telecom: [] }) },
      email: { shared: both(email('k.moreau@example.org')), different: [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', email('k.moreau@example.org')), same(email('kate@example.net'))], missing: same({}) },
      postalCode: { same: same({}), different: same({ address: [{ line: ['12 Elm Street'], city: 'Cambridge', postalCode: '99999' }] }), missing: same({ address: [{ line: ['12 Elm Street'], city: 'Cambridge' }] }) },
      street: { similar: same({ address: [{ line: ['12 Elm St'], city: 'Cambridge', postalCode: '02139' }] }), different: same({ address: [{ line: ['48 Elm Street'], city: 'Cambridge', postalCode: '02139' }] }), missing: same({ address: [{ city: 'Cambridge', postalCode: '02139' }] }) },
      locality: { same: both(noPostalCode('Cambridge')), different: [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', noPostalCode('Cambridge')), same(noPostalCode('Oxford'))], missing: same({}) },
      suffix: { same: both({ name: [{ family: 'Moreau', given: ['Katelin'], suffix: ['Jr'] }] }), different: [person('a', '1', 'Katelin', 'Moreau', '1971-05-09', { name: [{ family: 'Moreau', given: ['Katelin'], suffix: ['Jr'] }] }), same({ name: [{ family: 'Moreau', given: ['Katelin'], suffix: ['Sr'] }] })], missing: same({}) },
    };
    for (const field of FIELDS) {
      const byLevel = cases[field] as Record<string, Patient | [Patient, Patient]>;
      assert.deepEqual(Object.keys(byLevel).sort(), [...FIELD_LEVELS[field], 'missing'].sort(), `a case for every level of ${field}`);
      for (const [level, pair] of Object.entries(byLevel)) {
        const [a, b] = Array.isArray(pair) ? pair : [base, pair];
        assert.equal(vector(a, b)[field], level, `${field}: ${level}`);
      }
    }
  });
  it('reads a labelled CSV sample: FEBRL ids name the person, impossible dates are left out with a note', () => {
    const sample = labelledFromCsv('rec_id, given_name, surname, date_of_birth, soc_sec_id\nrec-1-org, ann, lee, 19380231, 1234567\nrec-1-dup-0, ann, lee, 19380213, 1234567\n');
    assert.deepEqual(sample.records.map((r) => r.person), ['rec-1', 'rec-1']);
    assert.equal(sample.records[0].patient.birthDate, undefined);
    assert.equal(sample.records[1].patient.birthDate, '1938-02-13');
    assert.match(sample.notes[0], /line 2: birth date is not a calendar date/);
  });
});

for (const backend of BACKENDS) {
  describe(`master patient index: evidence, bounded work, warnings (${backend})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startMpiTestServer(backend);
    });
    after(async () => s?.close());

    const create = async (p: Patient): Promise<string> => {
      const res = await s.fhir('POST', 'Patient', p);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id;
    };
    const enterpriseOf = async (id: string): Promise<string> => {
      const res = await s.fhir('GET', `Patient?link=Patient/${id}`);
      assert.equal(res.body.entry?.length, 1);
      return res.body.entry[0].resource.id;
    };
    const openPairs = async (): Promise<string[]> => {
      const res = await s.fhir('GET', 'Patient/$mpi-review-queue?_count=500');
      assert.equal(res.status, 200);
      return (res.body.parameter ?? [])
        .filter((p: any) => p.name === 'pair')
        .map((p: any) => p.part.filter((x: any) => x.name === 'patient' || x.name === 'other').map((x: any) => x.valueReference.reference.replace('Patient/', '')).sort().join());
    };

    it('a replaced first name with the same driver licence links; twins with different licences do not', async () => {
      const a = await create(person('hospital-a', 'ev-1', 'Siobhan', 'Vance', '1983-07-19', { identifier: [{ system: 'urn:example:hospital-a:mrn', value: 'ev-1' }, DL('NSW77123')] }));
      const b = await create(person('clinic-b', 'ev-2', 'Margaret', 'Vance', '1983-07-19', { identifier: [{ system: 'urn:example:clinic-b:mrn', value: 'ev-2' }, DL('nsw 77123')] }));
      assert.equal(await enterpriseOf(a), await enterpriseOf(b), 'one person: the licence outweighs the replaced first name');
      const t1 = await create(person('hospital-a', 'ev-3', 'Orla', 'Vance', '1990-01-02', { identifier: [{ system: 'urn:example:hospital-a:mrn', value: 'ev-3' }, DL('NSW10001')] }));
      const t2 = await create(person('clinic-b', 'ev-4', 'Aoife', 'Vance', '1990-01-02', { identifier: [{ system: 'urn:example:clinic-b:mrn', value: 'ev-4' }, DL('NSW55555')] }));
      assert.notEqual(await enterpriseOf(t1), await enterpriseOf(t2), 'twins: different first names and licences');
    });

    it('a member number written with and without separators and leading zeros is one number: a replaced first name links on it', async () => {
      const member = (value: string) => ({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] }, system: 'urn:example:insurer:member', value });
      const a = await create(person('hospital-a', 'ev-11', 'Roisin', 'Keane', '1979-10-02', { identifier: [{ system: 'urn:example:hospital-a:mrn', value: 'ev-11' }, member('0004417-09')] }));
      const b = await create(person('clinic-b', 'ev-12', 'Grainne', 'Keane', '1979-10-02', { identifier: [{ system: 'urn:example:clinic-b:mrn', value: 'ev-12' }, member('441709')] }));
      assert.equal(await enterpriseOf(a), await enterpriseOf(b));
      const opaque = (value: string) => ({ system: 'urn:example:clinic-token', value });
      const c = await create(person('hospital-a', 'ev-13', 'Nuala', 'Keane', '1985-04-11', { identifier: [{ system: 'urn:example:hospital-a:mrn', value: 'ev-13' }, opaque('kx-204')] }));
      const d = await create(person('clinic-b', 'ev-14', 'Brid', 'Keane', '1985-04-11', { identifier: [{ system: 'urn:example:clinic-b:mrn', value: 'ev-14' }, opaque('KX204')] }));
      assert.notEqual(await enterpriseOf(c), await enterpriseOf(d), 'a system of unknown format is not folded: the two values differ');
      const res = await s.fhir('POST', 'Patient', person('lab-c', 'ev-15', 'Aine', 'Keane', '1990-01-01', {
        identifier: [{ system: 'urn:example:lab-c:mrn', value: 'ev-15' }, { system: 'https://fhir.nhs.uk/Id/nhs-number', value: '943 476 591X' }],
      }), { prefer: 'return=OperationOutcome' });
      assert.equal(res.status, 201);
      const warnings = res.body.issue.filter((i: any) => i.severity === 'warning').map((i: any) => i.diagnostics).join('\n');
      assert.match(warnings, /identifier\[1\] of https:\/\/fhir\.nhs\.uk\/Id\/nhs-number is not a number of that system's format/);
      assert.doesNotMatch(warnings, /943/, 'never the value');
    });

    it('a record without birth date still meets its match (name and postcode key) and swapped names link with the same licence', async () => {
      const a = await create(person('hospital-a', 'ev-5', 'Declan', 'Ferris', '1961-03-30', { identifier: [{ system: 'urn:example:hospital-a:mrn', value: 'ev-5' }, DL('QLD4455')] }));
      const b = await create(person('clinic-b', 'ev-6', 'Ferris', 'Declan', '1961-03-30', { birthDate: undefined, telecom: [], identifier: [{ system: 'urn:example:clinic-b:mrn', value: 'ev-6' }, DL('QLD4455')] }));
      assert.equal(await enterpriseOf(a), await enterpriseOf(b));
    });

    it('an identifier Tessera cannot use is a warning on the write, never silently dropped', async () => {
      const res = await s.fhir('POST', 'Patient', person('hospital-a', 'ev-7', 'Imke', 'Brandt', '1977-08-08', {
        identifier: [{ system: 'urn:example:hospital-a:mrn', value: 'ev-7' }, { system: 'http://hl7.org/fhir/sid/us-ssn', value: '000-12-3456' }, { value: 'X-99' }],
      }), { prefer: 'return=OperationOutcome' });
      assert.equal(res.status, 201);
      const warnings = res.body.issue.filter((i: any) => i.severity === 'warning').map((i: any) => i.diagnostics);
      assert.ok(warnings.some((w: string) => /not a valid US SSN/.test(w)), warnings.join());
      assert.ok(warnings.some((w: string) => /no system/.test(w)), warnings.join());
      assert.ok(!warnings.join().includes('000-12-3456'), 'no identifier value in the warning');
      const batch = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ resource: person('clinic-b', 'ev-8', 'Imke', 'Brandt', '1977-08-08', { identifier: [{ value: 'nosystem' }] }), request: { method: 'POST', url: 'Patient' } }],
      } satisfies Bundle);
      assert.match(JSON.stringify(batch.body.entry[0].response.outcome), /no system/);
    });

    it('refuses calendar-invalid birth dates on create and in $match', async () => {
      for (const birthDate of ['2024-02-30', '1938-11-31']) {
        const res = await s.fhir('POST', 'Patient', person('hospital-a', `bad-${birthDate}`, 'Nils', 'Ek', birthDate));
        assert.equal(res.status, 422, birthDate);
        assert.match(JSON.stringify(res.body), /no such day/);
        const match = await s.fhir('POST', 'Patient/$match', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: person('x', '1', 'Nils', 'Ek', birthDate) }] });
        assert.equal(match.status, 422, `$match ${birthDate}`);
      }
      assert.equal((await s.fhir('POST', 'Patient', person('hospital-a', 'leap', 'Nils', 'Ek', '2024-02-29'))).status, 201);
    });

    it('$match lists certain before probable and possible', async () => {
      const a = await create(person('hospital-a', 'm-1', 'Ignatius', 'Pemberton', '1955-10-10'));
      await create(person('clinic-b', 'm-2', 'Ignatius', 'Pemberton', '1955-10-01', { telecom: [], address: [{ line: ['1 Quay'], postalCode: '99999' }] }));
      const res = await s.fhir('POST', 'Patient/$match', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: person('x', 'q', 'Ignatius', 'Pemberton', '1955-10-10', { identifier: [] }) }] });
      assert.equal(res.status, 200);
      const grades = res.body.entry.map((e: any) => e.search.extension[0].valueCode);
      assert.equal(grades[0], 'certain');
      assert.equal(res.body.entry[0].resource.id, await enterpriseOf(a));
      const order = { certain: 0, probable: 1, possible: 2 } as Record<string, number>;
      assert.deepEqual([...grades].sort((x: string, y: string) => order[x] - order[y]), grades);
    });

    it('$match orders by grade, then by score within a grade', async () => {
      // One person known, and namesakes each agreeing on less: every one short of a link, so each is its own enterprise.
      const known = await create(person('hospital-a', 'o-1', 'Evander', 'Quillfeather', '1962-03-04'));
      const elsewhere = { telecom: [], address: [{ line: ['7 Mill Lane'], city: 'Lowell', postalCode: '01850' }] };
      await create(person('clinic-b', 'o-2', 'Evander', 'Quillfeather', '1962-03-04', elsewhere));
      await create(person('clinic-c', 'o-3', 'Evander', 'Quillfeather', '1962-03-05', { telecom: [], address: [{ line: ['40 Oak Road'], city: 'Cambridge', postalCode: '02139' }] }));
      await create(person('clinic-d', 'o-4', 'Evander', 'Quillfeather', '1962-04-03', { ...elsewhere, address: [{ line: ['9 Pine Court'], city: 'Salem', postalCode: '01970' }] }));
      const res = await s.fhir('POST', 'Patient/$match', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: person('x', 'q', 'Evander', 'Quillfeather', '1962-03-04', { identifier: [] }) }] });
      assert.equal(res.status, 200);
      const ranked = res.body.entry.map((e: any) => ({ grade: e.search.extension[0].valueCode as string, score: e.search.score as number }));
      assert.equal(res.body.entry[0].resource.id, await enterpriseOf(known));
      const order: Record<string, number> = { certain: 0, probable: 1, possible: 2 };
      for (let i = 1; i < ranked.length; i++) {
        const [prev, next] = [ranked[i - 1], ranked[i]];
        assert.ok(order[prev.grade] < order[next.grade] || (prev.grade === next.grade && prev.score >= next.score), JSON.stringify(ranked));
      }
      assert.ok(
        ranked.some((r: { grade: string; score: number }, i: number) => i > 0 && r.grade === ranked[i - 1].grade && r.score < ranked[i - 1].score),
        `two of one grade with different scores, so that the order within a grade is shown: ${JSON.stringify(ranked)}`,
      );
    });

    it('$match validates its input as create does', async () => {
      const refusedByCreate = [
        person('hospital-a', 'v-1', 'Nils', 'Ek', '1970-13-01'),
        person('hospital-a', 'v-2', 'Nils', 'Ek', '1970-01-01', { gender: 'robot' as Patient['gender'] }),
        { ...person('hospital-a', 'v-3', 'Nils', 'Ek', '1970-01-01'), favouriteColour: 'blue' } as Patient,
      ];
      for (const patient of refusedByCreate) {
        const created = await s.fhir('POST', 'Patient', patient);
        const match = await s.fhir('POST', 'Patient/$match', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient }] });
        assert.equal(created.status, 422, JSON.stringify(created.body));
        assert.equal(match.status, created.status, `$match answers as create: ${JSON.stringify(match.body)}`);
        assert.equal(match.body.resourceType, 'OperationOutcome');
      }
      const notAPatient = await s.fhir('POST', 'Patient/$match', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } }] });
      assert.equal(notAPatient.status, 400);
      const badCount = await s.fhir('POST', 'Patient/$match', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: person('x', 'q', 'Nils', 'Ek', '1970-01-01') }, { name: 'count', valueInteger: 0 }] });
      assert.equal(badCount.status, 400);
    });

    it('one MRN sent for a different person opens a steward review with a warning instead of overwriting', async () => {
      const first = await create(person('lab-x', 'mrn-42', 'Harriet', 'Oyelaran', '1949-04-02', { gender: 'female' }));
      const res = await s.fhir('POST', 'Patient', person('lab-x', 'mrn-42', 'Tobias', 'Lindqvist', '2011-12-24'), { prefer: 'return=OperationOutcome' });
      assert.equal(res.status, 201, 'a new record, not an update of the first');
      assert.match(JSON.stringify(res.body), /already names Patient\/.*steward/);
      const second = /Patient\/([^/]+)/.exec(res.headers.get('location') ?? '')?.[1] as string;
      const kept = await s.fhir('GET', `Patient/${first}`);
      assert.equal(kept.body.name[0].given[0], 'Harriet', 'the first record is not overwritten');
      assert.ok((await openPairs()).includes([first, second].sort().join()), 'in the review queue');
      // A correction (one field) under the same MRN is still an update of the record.
      const fix = await s.fhir('POST', 'Patient', person('lab-x', 'mrn-42', 'Harriet', 'Oyelaran', '1949-04-20', { gender: 'female' }));
      assert.equal(fix.status, 200);
      assert.equal(fix.body.id, first);
    });

    it('records sharing one birth date and first name: bounded pairs and candidates per record', async () => {
      // 400 different people, one first name and birth date, as in a community of common names.
      const n = 400;
      const surnames = ['Nguyen', 'Tran', 'Le', 'Pham', 'Hoang', 'Vu', 'Dang', 'Bui', 'Do', 'Ho'];
      for (let start = 0; start < n; start += 100) {
        const entry = Array.from({ length: 100 }, (_, k) => {
          const i = start + k;
          return { resource: person('clinic-c', `bd-${i}`, 'Minh', `${surnames[i % 10]}${i}`, '1990-01-01', { telecom: [{ system: 'phone', value: `555${String(1000000 + i)}` }] }), request: { method: 'POST', url: 'Patient' } };
        });
        const res = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'batch', entry });
        assert.equal(res.status, 200);
      }
      const [{ pairs }] = await s.tessera.db.query<{ pairs: number }>("SELECT COUNT(*) AS pairs FROM mpi_pair p JOIN mpi_source s ON s.patient_id = p.patient_a WHERE s.source_value LIKE 'bd-%'");
      assert.ok(Number(pairs) <= 5 * n, `at most 5 review pairs per record (${pairs})`);
      const [{ keys }] = await s.tessera.db.query<{ keys: number }>("SELECT COUNT(*) AS keys FROM mpi_block b JOIN mpi_source s ON s.patient_id = b.patient_id WHERE s.source_value LIKE 'bd-%'");
      assert.ok(Number(keys) <= 12 * n, `blocking rows grow linearly (${keys})`);
    });
  });
}

describe('tessera mpi evaluate on a labelled sample', () => {
  it('FEBRL data set 1 (head): perfect precision, high recall', async () => {
    const { tessera } = await import('./helpers/cli.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'evaluate-'));
    const rows = readFileSync('bench/data/febrl/febrl_dataset1.csv', 'utf8').split('\n');
    // Originals and duplicates of the people in the first 300 rows.
    const people = new Set(rows.slice(1, 301).map((r) => /^rec-(\d+)/.exec(r)?.[1]));
    const sample = [rows[0], ...rows.slice(1).filter((r) => people.has(/^rec-(\d+)/.exec(r)?.[1]))].join('\n');
    writeFileSync(join(dir, 'sample.csv'), sample);
    const out = await tessera(['mpi', 'evaluate', '--truth', join(dir, 'sample.csv'), '--report', join(dir, 'report.md')], { TESSERA_DATA: '', DATABASE_URL: '' });
    assert.equal(out.code, 0, out.stderr);
    const [, precision, recall] = /precision ([\d.]+), recall ([\d.]+)/.exec(out.stdout) ?? [];
    assert.equal(Number(precision), 1, out.stdout);
    assert.ok(Number(recall) >= 0.9, out.stdout);
    assert.match(out.stdout, /pairs completeness [\d.]+/);
    assert.match(readFileSync(join(dir, 'report.md'), 'utf8'), /## Missed pairs/);
    const bad = await tessera(['mpi', 'evaluate', '--truth', join(dir, 'sample.csv'), '--truth-column', 'nope'], { TESSERA_DATA: '', DATABASE_URL: '' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /no truth column/);
  });
});
