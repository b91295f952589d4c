import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ids = (bundle: any): string[] => (bundle.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id).sort();
const names = (bundle: any): string[] =>
  (bundle.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.name?.[0]?.family);

for (const backend of BACKENDS) {
  describe(`search (${backend})`, () => {
    let s: TestServer;
    const p: Record<string, any> = {};
    const o: Record<string, any> = {};
    const get = async (query: string, headers?: Record<string, string>) => {
      const res = await s.fhir('GET', query, undefined, headers);
      assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`);
      return res.body;
    };

    before(async () => {
      s = await startTestServer(backend);
      const org = (await s.fhir('POST', 'Organization', { resourceType: 'Organization', name: 'Mercy Hospital' })).body;
      const mk = async (key: string, body: any) => (p[key] = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', ...body })).body);
      await mk('muller', {
        name: [{ family: 'Müller', given: ['Jürgen'] }],
        gender: 'male',
        birthDate: '1960-03-15',
        identifier: [{ system: 'urn:mrn:a', value: '123' }],
        address: [{ city: 'Boston', postalCode: '02118' }],
        managingOrganization: { reference: `Organization/${org.id}` },
        telecom: [{ system: 'phone', value: '555-0100' }],
      });
      await mk('smith', { name: [{ family: 'Smith', given: ['Anna'] }], gender: 'female', birthDate: '1985-07', identifier: [{ system: 'urn:mrn:b', value: '123' }] });
      await mk('smithers', { name: [{ family: 'Smithers', given: ['Waylon'] }], gender: 'male', birthDate: '1990-01-01' });
      await mk('nobirth', { name: [{ family: 'Ng' }], active: true, meta: { tag: [{ system: 'urn:tags', code: 'vip' }], profile: ['http://example.org/StructureDefinition/p'] } });
      const obs = async (key: string, patient: string, code: string, value: number, date: string) =>
        (o[key] = (
          await s.fhir('POST', 'Observation', {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code, display: code === '4548-4' ? 'Hemoglobin A1c' : 'Glucose' }] },
            subject: { reference: `Patient/${p[patient].id}` },
            effectiveDateTime: date,
            valueQuantity: { value, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
          })
        ).body);
      await obs('a1cHigh', 'muller', '4548-4', 8.2, '2024-02-10T09:30:00Z');
      await obs('a1cNormal', 'smith', '4548-4', 5.1, '2023-11-01');
      await obs('glucose', 'smith', '2345-7', 99, '2024-05-20T12:00:00+02:00');
      o.bp = (
        await s.fhir('POST', 'Observation', {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
          subject: { reference: `Patient/${p.smithers.id}` },
          component: [
            { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 152, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
            { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 91, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
          ],
        })
      ).body;
      await s.fhir('POST', 'Provenance', {
        resourceType: 'Provenance',
        target: [{ reference: `Observation/${o.a1cHigh.id}` }],
        recorded: '2024-02-10T10:00:00Z',
        agent: [{ who: { reference: `Organization/${org.id}` } }],
      });
      await s.fhir('POST', 'ValueSet', { resourceType: 'ValueSet', status: 'active', url: 'http://example.org/fhir/ValueSet/colours' });
    });
    after(async () => s?.close());

    it('string: starts-with, case- and accent-insensitive; :exact; :contains', async () => {
      assert.deepEqual(ids(await get('Patient?name=muller')), [p.muller.id]);
      assert.deepEqual(ids(await get('Patient?family=SMITH')), [p.smith.id, p.smithers.id].sort());
      assert.deepEqual(ids(await get('Patient?family:exact=Smith')), [p.smith.id]);
      assert.deepEqual(ids(await get('Patient?family:exact=smith')), []);
      assert.deepEqual(ids(await get('Patient?name:contains=ither')), [p.smithers.id]);
      assert.deepEqual(ids(await get('Patient?address-city=bos')), [p.muller.id]);
      assert.deepEqual(ids(await get('Patient?given=jurgen')), [p.muller.id]);
    });

    it('token: code, system|code, |code, system|, :not, :text, identifiers and booleans', async () => {
      assert.deepEqual(ids(await get('Patient?gender=female')), [p.smith.id]);
      assert.deepEqual(ids(await get('Patient?identifier=123')), [p.muller.id, p.smith.id].sort());
      assert.deepEqual(ids(await get('Patient?identifier=urn:mrn:b|123')), [p.smith.id]);
      assert.deepEqual(ids(await get('Patient?identifier=urn:mrn:a|')), [p.muller.id]);
      assert.deepEqual(ids(await get('Patient?gender:not=male')), [p.nobirth.id, p.smith.id].sort());
      assert.deepEqual(ids(await get('Observation?code:text=hemoglobin')), [o.a1cHigh.id, o.a1cNormal.id].sort());
      assert.deepEqual(ids(await get('Patient?active=true')), [p.nobirth.id]);
      assert.deepEqual(ids(await get('Patient?phone=555-0100')), [p.muller.id]);
      assert.deepEqual(ids(await get('Observation?code=http://loinc.org|2345-7')), [o.glucose.id]);
      assert.deepEqual(ids(await get('Observation?code=|2345-7')), []);
    });

    it('token :below and :above through the hierarchies of the R4 code systems; other systems refused', async () => {
      const actCode = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
      const encounter = async (code: string) => (await s.fhir('POST', 'Encounter', { resourceType: 'Encounter', status: 'finished', class: { system: actCode, code } })).body.id;
      const [inpatient, acute, ambulatory] = [await encounter('IMP'), await encounter('ACUTE'), await encounter('AMB')];
      assert.deepEqual(ids(await get(`Encounter?class:below=${actCode}|IMP`)), [inpatient, acute].sort(), 'inpatient subsumes acute inpatient');
      assert.deepEqual(ids(await get(`Encounter?class:above=${actCode}|ACUTE`)), [inpatient, acute].sort());
      assert.deepEqual(ids(await get(`Encounter?class:below=${actCode}|_ActEncounterCode`)), [inpatient, acute, ambulatory].sort());
      assert.deepEqual(ids(await get(`Encounter?class:below=${actCode}|AMB`)), [ambulatory]);
      const snomed = await s.fhir('GET', 'Condition?code:below=http://snomed.info/sct|73211009');
      assert.equal(snomed.status, 400);
      assert.match(snomed.body.issue[0].diagnostics, /terminology server/);
      assert.equal((await s.fhir('GET', 'Encounter?class:below=IMP')).status, 400, 'a system is needed');
    });

    it('_tag, _profile, _id, _lastUpdated', async () => {
      assert.deepEqual(ids(await get('Patient?_tag=urn:tags|vip')), [p.nobirth.id]);
      assert.deepEqual(ids(await get('Patient?_profile=http://example.org/StructureDefinition/p')), [p.nobirth.id]);
      assert.deepEqual(ids(await get(`Patient?_id=${p.smith.id},${p.muller.id}`)), [p.muller.id, p.smith.id].sort());
      assert.equal((await get('Patient?_lastUpdated=gt2000-01-01')).entry.length, 4);
      assert.equal((await get('Patient?_lastUpdated=lt2000-01-01')).entry.length, 0);
    });

    it('date: precision ranges and every prefix', async () => {
      assert.deepEqual(ids(await get('Patient?birthdate=1985')), [p.smith.id]);
      assert.deepEqual(ids(await get('Patient?birthdate=1985-07-04')), []); // 1985-07 is not within one day
      assert.deepEqual(ids(await get('Patient?birthdate=ge1985-07-01')), [p.smith.id, p.smithers.id].sort());
      assert.deepEqual(ids(await get('Patient?birthdate=lt1985')), [p.muller.id]);
      assert.deepEqual(ids(await get('Patient?birthdate=gt1985-07-31')), [p.smithers.id]);
      assert.deepEqual(ids(await get('Patient?birthdate=le1960-03-15')), [p.muller.id]);
      assert.deepEqual(ids(await get('Patient?birthdate=sa1980&birthdate=eb1995')), [p.smith.id, p.smithers.id].sort());
      assert.deepEqual(ids(await get('Patient?birthdate=ne1960-03-15&birthdate:missing=false')), [p.smith.id, p.smithers.id].sort());
      assert.deepEqual(ids(await get('Observation?date=2024-05-20T10:00:00Z')), [o.glucose.id]); // +02:00 normalised
      assert.deepEqual(ids(await get('Observation?date=ge2024-01-01,lt2023-12-01')), [o.a1cHigh.id, o.a1cNormal.id, o.glucose.id].sort());
      assert.deepEqual(ids(await get('Patient?birthdate=ap1960-03-20')), [p.muller.id]);
    });

    it(':missing on any type', async () => {
      assert.deepEqual(ids(await get('Patient?birthdate:missing=true')), [p.nobirth.id]);
      assert.deepEqual(ids(await get('Patient?organization:missing=false')), [p.muller.id]);
    });

    it('quantity and number: prefixes, implicit precision, system and unit', async () => {
      assert.deepEqual(ids(await get('Observation?value-quantity=gt8')), [o.a1cHigh.id, o.glucose.id].sort());
      assert.deepEqual(ids(await get('Observation?value-quantity=8.2|http://unitsofmeasure.org|%')), [o.a1cHigh.id]);
      assert.deepEqual(ids(await get('Observation?value-quantity=8|http://unitsofmeasure.org|%')), [o.a1cHigh.id]); // 8 means [7.5, 8.5)
      assert.deepEqual(ids(await get('Observation?value-quantity=le5.1||%')), [o.a1cNormal.id]);
      assert.deepEqual(ids(await get('Observation?value-quantity=99|http://unitsofmeasure.org|mg')), []);
      assert.deepEqual(ids(await get('Observation?value-quantity=ap100')), [o.glucose.id]);
      const rr = await get('RiskAssessment?probability=gt0.5');
      assert.equal(rr.resourceType, 'Bundle');
    });

    it('reference: id, Type/id, :Type modifier, absolute URL; uri with :below and :above', async () => {
      assert.deepEqual(ids(await get(`Observation?subject=Patient/${p.smith.id}`)), [o.a1cNormal.id, o.glucose.id].sort());
      assert.deepEqual(ids(await get(`Observation?subject:Patient=${p.smith.id}`)), [o.a1cNormal.id, o.glucose.id].sort());
      assert.deepEqual(ids(await get(`Observation?patient=${p.muller.id}`)), [o.a1cHigh.id]);
      assert.deepEqual(ids(await get(`Observation?subject:Group=${p.smith.id}`)), []);
      assert.equal((await get('ValueSet?url=http://example.org/fhir/ValueSet/colours')).entry.length, 1);
      assert.equal((await get('ValueSet?url:below=http://example.org/fhir')).entry.length, 1);
      assert.equal((await get('ValueSet?url:above=http://example.org/fhir/ValueSet/colours/extra')).entry.length, 1);
      assert.equal((await get('ValueSet?url:below=http://other.org')).entry.length, 0);
    });

    it('composite: code-value-quantity, component-code-value-quantity, combo', async () => {
      assert.deepEqual(ids(await get('Observation?code-value-quantity=http://loinc.org|4548-4$gt8')), [o.a1cHigh.id]);
      assert.deepEqual(ids(await get('Observation?code-value-quantity=4548-4$lt6')), [o.a1cNormal.id]);
      assert.deepEqual(ids(await get('Observation?code-value-quantity=http://loinc.org|2345-7$gt8')), [o.glucose.id]);
      assert.deepEqual(ids(await get('Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140')), [o.bp.id]);
      assert.deepEqual(ids(await get('Observation?component-code-value-quantity=http://loinc.org|8462-4$gt140')), []); // diastolic is 91
      assert.deepEqual(ids(await get('Observation?combo-code-value-quantity=8462-4$91|http://unitsofmeasure.org|mm[Hg]')), [o.bp.id]);
      assert.equal((await s.fhir('GET', 'Observation?code-value-quantity=4548-4')).status, 400);
      // combo-* covers the Observation's own code and value as well as its components'.
      assert.deepEqual(ids(await get('Observation?combo-code-value-quantity=http://loinc.org|4548-4$gt8')), [o.a1cHigh.id]);
      // A quantity value is not a concept or a string: its unit is not found under those parameters.
      assert.deepEqual(ids(await get(`Observation?code-value-concept=${encodeURIComponent('http://loinc.org|4548-4$http://unitsofmeasure.org|%')}`)), []);
      assert.deepEqual(ids(await get(`Observation?code-value-string=${encodeURIComponent('4548-4$%')}`)), []);
    });

    it('OR within a parameter, AND across repeats', async () => {
      assert.deepEqual(ids(await get('Patient?family=muller,ng')), [p.muller.id, p.nobirth.id].sort());
      assert.deepEqual(ids(await get('Patient?family=smith&given=anna')), [p.smith.id]);
      assert.deepEqual(ids(await get('Patient?family=smith&family=smithers')), [p.smithers.id]);
    });

    it('chained and reverse-chained parameters', async () => {
      assert.deepEqual(ids(await get('Observation?subject:Patient.name=muller')), [o.a1cHigh.id]);
      assert.deepEqual(ids(await get('Observation?subject.birthdate=1985')), [o.a1cNormal.id, o.glucose.id].sort());
      assert.deepEqual(ids(await get('Observation?subject:Patient.organization.name=mercy')), [o.a1cHigh.id]);
      assert.deepEqual(ids(await get('Patient?_has:Observation:subject:code=4548-4')), [p.muller.id, p.smith.id].sort());
      assert.deepEqual(ids(await get('Patient?_has:Observation:subject:value-quantity=gt8')), [p.muller.id, p.smith.id].sort());
      assert.deepEqual(ids(await get('Patient?_has:Observation:subject:_has:Provenance:target:recorded=2024')), [p.muller.id]);
    });

    it('parameters stored as others (patient = subject rows that point at a Patient; combo-code = code + component-code) answer on every path', async () => {
      const group = (await s.fhir('POST', 'Group', { resourceType: 'Group', type: 'person', actual: true })).body;
      const groupObs = (
        await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'group level' }, subject: { reference: `Group/${group.id}` } })
      ).body;
      // patient: only the Patient subjects, by id, :missing, chain, _has, _include, _revinclude, _sort.
      assert.deepEqual(ids(await get(`Observation?patient=${p.smith.id}`)), [o.a1cNormal.id, o.glucose.id].sort());
      assert.deepEqual(ids(await get(`Observation?patient=${group.id}`)), []);
      assert.deepEqual(ids(await get(`Observation?subject=Group/${group.id}`)), [groupObs.id]);
      assert.ok(ids(await get('Observation?patient:missing=true&_count=100')).includes(groupObs.id));
      assert.ok(!ids(await get('Observation?patient:missing=false&_count=100')).includes(groupObs.id));
      assert.deepEqual(ids(await get('Observation?patient.family=muller')), [o.a1cHigh.id]);
      assert.deepEqual(ids(await get('Patient?_has:Observation:patient:code=4548-4')), [p.muller.id, p.smith.id].sort());
      const inc = await get(`Observation?_id=${o.a1cHigh.id},${groupObs.id}&_include=Observation:patient`);
      assert.deepEqual(inc.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.id), [p.muller.id]);
      const rev = await get(`Patient?_id=${p.smith.id}&_revinclude=Observation:patient`);
      assert.deepEqual(rev.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.id).sort(), [o.a1cNormal.id, o.glucose.id].sort());
      const sorted = await get(`Observation?_id=${o.a1cHigh.id},${o.glucose.id},${groupObs.id}&_sort=patient`);
      assert.equal(sorted.entry.at(-1).resource.id, groupObs.id); // no patient: sorts last
      // combo-code: the Observation's own code and its components' codes.
      assert.deepEqual(ids(await get('Observation?combo-code=http://loinc.org|8480-6')), [o.bp.id]);
      assert.deepEqual(ids(await get('Observation?combo-code=http://loinc.org|85354-9,http://loinc.org|2345-7')), [o.bp.id, o.glucose.id].sort());
      assert.deepEqual(ids(await get('Observation?combo-code:text=group')), [groupObs.id]);
      assert.ok(!ids(await get('Observation?combo-code:not=http://loinc.org|8480-6&_count=100')).includes(o.bp.id));
      assert.deepEqual(ids(await get('Observation?combo-value-quantity=gt150')), [o.bp.id]);
      await s.fhir('DELETE', `Observation/${groupObs.id}`);
      await s.fhir('DELETE', `Group/${group.id}`);
    });

    it('_include, _revinclude and :iterate', async () => {
      const inc = await get(`Observation?_id=${o.a1cHigh.id}&_include=Observation:subject`);
      assert.deepEqual(
        inc.entry.map((e: any) => `${e.search.mode}:${e.resource.resourceType}`),
        ['match:Observation', 'include:Patient'],
      );
      const rev = await get(`Patient?_id=${p.muller.id}&_revinclude=Observation:subject`);
      assert.deepEqual(rev.entry.map((e: any) => e.resource.resourceType).sort(), ['Observation', 'Patient']);
      const iter = await get(`Patient?_id=${p.muller.id}&_revinclude=Observation:subject&_revinclude:iterate=Provenance:target`);
      assert.deepEqual(iter.entry.map((e: any) => e.resource.resourceType).sort(), ['Observation', 'Patient', 'Provenance']);
      const orgViaIterate = await get(`Observation?_id=${o.a1cHigh.id}&_include=Observation:subject&_include:iterate=Patient:organization`);
      assert.deepEqual(orgViaIterate.entry.map((e: any) => e.resource.resourceType).sort(), ['Observation', 'Organization', 'Patient']);
      assert.equal((await s.fhir('GET', 'Observation?_include=Observation:bogus')).status, 400);
    });

    it('_sort (multiple, descending), _count paging with stable links, _total', async () => {
      assert.deepEqual(names(await get('Patient?_sort=family')), ['Müller', 'Ng', 'Smith', 'Smithers']);
      assert.deepEqual(names(await get('Patient?_sort=-birthdate')), ['Smithers', 'Smith', 'Müller', 'Ng']); // missing last
      assert.deepEqual(names(await get('Patient?_sort=gender,-family')), ['Smith', 'Smithers', 'Müller', 'Ng']);
      const page1 = await get('Patient?_sort=family&_count=2&_total=accurate');
      assert.equal(page1.total, 4);
      assert.deepEqual(names(page1), ['Müller', 'Ng']);
      const next = page1.link.find((l: any) => l.relation === 'next').url;
      const page2 = await get(next.slice(next.indexOf('/fhir/') + 6));
      assert.deepEqual(names(page2), ['Smith', 'Smithers']);
      assert.equal(page2.link.find((l: any) => l.relation === 'next'), undefined);
      assert.ok(page2.link.find((l: any) => l.relation === 'previous'));
      const count = await get('Patient?_summary=count');
      assert.equal(count.total, 4);
      assert.equal(count.entry.length, 0);
    });

    it('pages of a single system|code or Type/id search: each match once, in id order, no gaps', async () => {
      const patient = { id: 'pager-subject' }; // not created: other tests count Patients
      const created: string[] = [];
      for (let i = 0; i < 7; i++) {
        const coding = [
          { system: 'urn:paging', code: 'twice', display: `first ${i}` },
          { system: 'urn:paging', code: 'twice', display: `second ${i}` },
        ];
        const body = { resourceType: 'Observation', status: 'final', code: { coding }, subject: { reference: `Patient/${patient.id}` } };
        created.push((await s.fhir('POST', 'Observation', body)).body.id);
      }
      const expected = [...created].sort();
      for (const query of ['Observation?code=urn:paging|twice', `Observation?subject=Patient/${patient.id}`]) {
        const seen: string[] = [];
        for (let offset = 0; offset < 9; offset += 3) {
          const page = await get(`${query}&_count=3&_offset=${offset}`);
          seen.push(...(page.entry ?? []).map((e: any) => e.resource.id));
        }
        assert.deepEqual(seen, expected, query);
      }
    });

    it('_summary and _elements subset resources and mark them SUBSETTED', async () => {
      const summary = await get(`Patient?_id=${p.muller.id}&_summary=true`);
      const r = summary.entry[0].resource;
      assert.ok(r.name && r.birthDate);
      assert.equal(r.telecom !== undefined, true);
      assert.equal(r.contact, undefined);
      assert.equal(r.meta.tag.at(-1).code, 'SUBSETTED');
      const elements = await get(`Patient?_id=${p.muller.id}&_elements=gender`);
      assert.deepEqual(Object.keys(elements.entry[0].resource).sort(), ['gender', 'id', 'meta', 'resourceType']);
    });

    it('POST _search with a form body gives the same result as GET', async () => {
      const res = await s.fhir('POST', 'Patient/_search', 'family=smith&gender=female', { 'content-type': 'application/x-www-form-urlencoded' });
      assert.equal(res.status, 200);
      assert.deepEqual(ids(res.body), [p.smith.id]);
    });

    it('unknown parameters: ignored with a warning (lenient), 400 under Prefer: handling=strict', async () => {
      const lenient = await get('Patient?nmae=smith');
      assert.equal(lenient.entry.filter((e: any) => e.search.mode === 'match').length, 4);
      assert.equal(lenient.entry.at(-1).resource.resourceType, 'OperationOutcome');
      const strict = await s.fhir('GET', 'Patient?nmae=smith', undefined, { prefer: 'handling=strict' });
      assert.equal(strict.status, 400);
      assert.match(strict.body.issue[0].diagnostics, /nmae/);
    });

    it('bad values give 400, not 500', async () => {
      for (const q of ['Patient?birthdate=1985-13', 'Observation?value-quantity=abc', 'Patient?_count=-1', 'Patient?_count=many', 'Patient?birthdate:missing=maybe', 'Patient?_has:Nope:x:y=1']) {
        const res = await s.fhir('GET', q);
        assert.equal(res.status, 400, q);
        assert.equal(res.body.resourceType, 'OperationOutcome');
      }
    });

    it('SQL injection attempts in values are inert', async () => {
      const attacks = ["x' OR '1'='1", "'; DROP TABLE resource; --", 'smith%', 'smi_h', '\\', "1) OR (1=1"];
      for (const attack of attacks) {
        const q = encodeURIComponent(attack);
        const byName = await s.fhir('GET', `Patient?name=${q}`);
        assert.ok(byName.status === 400 || byName.body.entry.length === 0, attack);
        assert.equal((await get(`Patient?identifier=${q}`)).entry.length, 0, attack);
        assert.equal((await get(`Patient?_id=${q}`)).entry.length, 0, attack);
        assert.equal((await s.fhir('GET', `Patient?_sort=${q}`)).status, 400, attack);
      }
      assert.equal((await get('Patient?_total=accurate')).total, 4);
    });
  });
}
