import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Parameters, Patient, Resource } from '@medplum/fhirtypes';
import { addParticipant } from '../src/participants/participants.js';
import { parseScopes } from '../src/security/scopes.js';
import type { AuthContext } from '../src/security/token-service.js';
import { BACKENDS } from './helpers/backends.js';
import { bodyOf, engineAs, privacyConsent } from './helpers/governance.js';
import { person } from './helpers/people.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';
import { deferred } from './helpers/crossed-locks.js';
import type { WriteObserver } from '../src/store/repository.js';

/**
 * Consents and break-the-glass grants follow the person as the master patient index changes who that is,
 * end to end through the HTTP server (records, consents, steward operations) and the engine (signed-in
 * clinicians). Data: synthetic, written below: two participant organisations (Riverside Clinic,
 * Hillcrest Hospital) whose clients read, made-up people whose records arrive from Riverside and from a
 * third source (Lakeside Lab, MRN system urn:example:lakeside:mrn) with the same or differing
 * demographics (so that the index links them on arrival, or leaves them apart for a steward), pulse
 * readings (LOINC 8867-4) and an HIV viral load (LOINC 20447-9, labelled HIV by the server), and
 * IHE Privacy Consent on FHIR Consents denying one organisation. The last test holds a link's transaction
 * open (a write observer of its own) while a Consent is written: on PostgreSQL the two run concurrently.
 */
const params = (values: Record<string, string>): Parameters => ({
  resourceType: 'Parameters',
  parameter: Object.entries(values).map(([name, value]) => (name === 'reason' ? { name, valueString: value } : { name, valueReference: { reference: `Patient/${value}` } })),
});
const idsOf = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource?.id as string).sort();

for (const backend of BACKENDS) {
  describe(`consents and break-the-glass follow identity changes (${backend})`, () => {
    let s: TestServer;
    const org: Record<string, string> = {};
    const tokens: Record<string, string> = {};

    const post = async (r: Resource): Promise<string> => {
      const res = await s.fhir('POST', r.resourceType, r);
      assert.ok(res.status === 201 || res.status === 200, JSON.stringify(res.body));
      return res.body.id;
    };
    const pulse = (patient: string) => post({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${patient}` }, valueQuantity: { value: 72 } });
    const hiv = (patient: string) => post({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '20447-9', display: 'HIV 1 RNA' }] }, subject: { reference: `Patient/${patient}` }, valueQuantity: { value: 40000 } });
    /** A Consent of the person of `patient` denying one organisation everything. */
    const deny = (patient: string, organization: string) =>
      post(privacyConsent(patient, { type: 'permit', provision: [{ type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${organization}` } }] }] }));
    /** The HTTP status of a participant's read of a record. */
    const readBy = async (who: 'riverside' | 'hillcrest', path: string) => (await s.fhir('GET', path, undefined, { authorization: `Bearer ${tokens[who]}` })).status;
    const searchBy = async (who: 'riverside' | 'hillcrest', path: string) => idsOf((await s.fhir('GET', path, undefined, { authorization: `Bearer ${tokens[who]}` })).body);
    const enterpriseOf = async (sourceId: string): Promise<Patient> => {
      const res = await s.fhir('GET', `Patient?link=Patient/${sourceId}`);
      assert.equal(res.body.entry?.length, 1, `exactly one golden record links Patient/${sourceId}`);
      return res.body.entry[0].resource;
    };
    const linked = (golden: Patient) => (golden.link ?? []).filter((l) => l.type === 'seealso').map((l) => l.other.reference).sort();
    const steward = async (name: string, values: Record<string, string>) => {
      const res = await s.fhir('POST', `Patient/${name}`, params(values));
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };

    before(async () => {
      s = await startTestServer(backend);
      for (const [key, name] of [['riverside', 'Riverside Clinic'], ['hillcrest', 'Hillcrest Hospital']]) {
        const { participant, client } = await addParticipant(s.tessera.repo, { name, mrnSystem: `urn:example:${key}:mrn`, scope: 'system/*.rs' });
        org[key] = participant.organizationId;
        tokens[key] = await getToken(s.url, client!.clientId, client!.clientSecret as string);
      }
    });
    after(async () => s?.close());

    it('a record of the same person that arrives and is linked after the Consent is covered by it', async () => {
      const nadia = { gender: 'female' as const };
      const own = await post(person('riverside', 'cn-1', 'Nadia', 'Okonkwo', '1979-04-11', nadia));
      await deny(own, org.hillcrest);
      assert.equal(await readBy('hillcrest', `Patient/${own}`), 404);
      // Her record at the lab arrives later and is linked on arrival; then its data.
      const lab = await post(person('lakeside', 'lk-1', 'Nadia', 'Okonkwo', '1979-04-11', nadia));
      const golden = await enterpriseOf(lab);
      assert.deepEqual(linked(golden), [`Patient/${lab}`, `Patient/${own}`].sort(), 'auto-linked');
      const reading = await pulse(lab);
      assert.equal(await readBy('hillcrest', `Patient/${lab}`), 404);
      assert.equal(await readBy('hillcrest', `Observation/${reading}`), 404);
      assert.deepEqual(await searchBy('hillcrest', `Observation?subject=Patient/${lab}`), []);
      assert.equal(await readBy('hillcrest', `Patient/${golden.id}`), 404, 'nor her enterprise record');
      // Not denied to others.
      assert.equal(await readBy('riverside', `Patient/${lab}`), 200);
      assert.deepEqual(await searchBy('riverside', `Observation?subject=Patient/${lab}`), [reading]);
    });

    it('steward unlink: each side keeps only its own person\'s consent; link puts them together again', async () => {
      const tomasz = { gender: 'male' as const };
      const first = await post(person('riverside', 'ul-1', 'Tomasz', 'Wielgosz', '1966-08-30', tomasz));
      const second = await post(person('lakeside', 'ul-9', 'Tomasz', 'Wielgosz', '1966-08-30', tomasz));
      const together = await enterpriseOf(first);
      assert.deepEqual(linked(together), [`Patient/${first}`, `Patient/${second}`].sort(), 'auto-linked');
      // One Consent named on each record: while linked, both are the person's.
      await deny(first, org.hillcrest);
      await deny(second, org.riverside);
      for (const record of [first, second]) {
        assert.equal(await readBy('hillcrest', `Patient/${record}`), 404);
        assert.equal(await readBy('riverside', `Patient/${record}`), 404);
      }
      await steward('$mpi-unlink', { patient: second, reason: 'another Tomasz Wielgosz' });
      const apart = await enterpriseOf(second);
      assert.notEqual(apart.id, together.id);
      assert.equal(await readBy('hillcrest', `Patient/${second}`), 200, 'the first person\'s consent no longer covers the unlinked record');
      assert.equal(await readBy('hillcrest', `Patient/${first}`), 404);
      assert.equal(await readBy('riverside', `Patient/${first}`), 200, 'the unlinked record\'s consent no longer covers the first person');
      assert.equal(await readBy('riverside', `Patient/${second}`), 404, 'its own consent still covers it');
      assert.equal(await readBy('riverside', `Patient/${apart.id}`), 404, 'and its new enterprise record');
      assert.equal(await readBy('hillcrest', `Patient/${apart.id}`), 200);

      await steward('$mpi-link', { patient: second, target: first, reason: 'the same Tomasz after all' });
      for (const record of [first, second]) {
        assert.equal(await readBy('hillcrest', `Patient/${record}`), 404);
        assert.equal(await readBy('riverside', `Patient/${record}`), 404);
      }
    });

    it('merge and unmerge: consents cover the merged person, then each side again; a consent on a merged-away enterprise follows it', async () => {
      const priya = { gender: 'female' as const, telecom: [], address: [] };
      const a = await post(person('riverside', 'mg-1', 'Priya', 'Ramaswamy', '1985-01-09', { gender: 'female' }));
      const b = await post(person('lakeside', 'mg-9', 'Priya', 'Ramaswamy-Iyer', '1985-09-01', priya));
      const [first, second] = [await enterpriseOf(a), await enterpriseOf(b)];
      assert.notEqual(first.id, second.id, 'two people to the index');
      // One Consent on a source record, one on the other person's enterprise (golden) record.
      await deny(a, org.hillcrest);
      await deny(second.id as string, org.riverside);
      assert.equal(await readBy('hillcrest', `Patient/${b}`), 200);
      assert.equal(await readBy('riverside', `Patient/${a}`), 200);

      await steward('$mpi-merge', { source: second.id as string, target: first.id as string, reason: 'married name' });
      assert.deepEqual(linked(await enterpriseOf(b)), [`Patient/${a}`, `Patient/${b}`].sort());
      for (const record of [a, b]) {
        assert.equal(await readBy('hillcrest', `Patient/${record}`), 404);
        assert.equal(await readBy('riverside', `Patient/${record}`), 404, 'the merged-away enterprise\'s consent covers the survivor');
      }

      await steward('$mpi-unmerge', { source: second.id as string, reason: 'merged the wrong Priya' });
      assert.equal((await enterpriseOf(b)).id, second.id);
      assert.equal(await readBy('hillcrest', `Patient/${b}`), 200);
      assert.equal(await readBy('hillcrest', `Patient/${a}`), 404);
      assert.equal(await readBy('riverside', `Patient/${a}`), 200);
      assert.equal(await readBy('riverside', `Patient/${b}`), 404);
    });

    it('break-the-glass follows the person: a record linked meanwhile is exempt, an unlinked one no longer', async () => {
      const esperanza = { gender: 'female' as const };
      const own = await post(person('riverside', 'bg-1', 'Esperanza', 'Quintanilla', '1990-12-03', esperanza));
      await deny(own, org.riverside);
      const scopes = parseScopes('user/*.rs');
      const clinician = (id: string): AuthContext => ({ clientId: 'portal', scopes, user: { id, role: 'clinician', fhirUser: `Practitioner/${id}` }, organization: `Organization/${org.riverside}`, purposeOfUse: 'ETREAT' });
      const [early, late, colleague] = [clinician('u-early'), clinician('u-late'), clinician('u-none')];
      const declare = async (who: AuthContext) => {
        const res = await engineAs(s, who, 'POST', `Patient/${own}/$break-the-glass`, { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: 'Unconscious in the emergency department' }] });
        assert.equal(res.status, 200);
      };
      const observations = async (who: AuthContext, patient: string) => idsOf(bodyOf(await engineAs(s, who, 'GET', `Observation?subject=Patient/${patient}`)));
      await declare(early);
      assert.equal((await engineAs(s, early, 'GET', `Patient/${own}`)).status, 200);

      // Her record at the lab arrives during the emergency, is linked, and brings an HIV viral load.
      const lab = await post(person('lakeside', 'bg-9', 'Esperanza', 'Quintanilla', '1990-12-03', esperanza));
      assert.deepEqual(linked(await enterpriseOf(lab)), [`Patient/${lab}`, `Patient/${own}`].sort(), 'auto-linked');
      const [reading, load] = [await pulse(lab), await hiv(lab)];
      assert.deepEqual(await observations(early, lab), [load, reading].sort(), 'the grant declared before the link covers the new record, labels too');
      assert.deepEqual(await observations(colleague, lab), [], 'her consent covers it for a colleague without a grant');
      await declare(late);
      assert.deepEqual(await observations(late, lab), [load, reading].sort());

      await steward('$mpi-unlink', { patient: lab, reason: 'a different Esperanza Quintanilla' });
      for (const who of [early, late]) {
        assert.deepEqual(await observations(who, lab), [reading], 'another person\'s labelled data is no longer exempt');
        assert.equal((await engineAs(s, who, 'GET', `Patient/${own}`)).status, 200, 'the declared person still is');
      }
      assert.deepEqual(await observations(colleague, lab), [reading], 'her consent no longer covers the unlinked record');
    });

    it('a Consent written while a link of the person is being committed covers the record linked (the enterprise lock)', async () => {
      const marisol = { gender: 'female' as const };
      const own = await post(person('riverside', 'rc-1', 'Marisol', 'Vasquez', '1972-03-15', marisol));
      // The lab record's transaction stops after the index has linked it (and locked the enterprise),
      // before it commits, until the Consent's request has had time to run.
      const [paused, release] = [deferred(), deferred()];
      const hold: WriteObserver = {
        types: new Set(['Patient']),
        async written(_repo, resources) {
          if ((resources as Patient[]).some((p) => p.identifier?.some((i) => i.value === 'rc-9'))) {
            paused.resolve();
            await Promise.race([release.promise, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
          }
        },
        async deleted() {},
      };
      s.tessera.repo.observe(hold);
      const arriving = s.fhir('POST', 'Patient', person('lakeside', 'rc-9', 'Marisol', 'Vasquez', '1972-03-15', marisol));
      await paused.promise;
      const consent = deny(own, org.hillcrest);
      // Without the lock the Consent commits now, expanded over the person without the uncommitted link.
      await Promise.race([consent, new Promise((resolve) => setTimeout(resolve, 500))]);
      release.resolve();
      const lab = (await arriving).body.id as string;
      await consent;
      assert.deepEqual(linked(await enterpriseOf(lab)), [`Patient/${lab}`, `Patient/${own}`].sort(), 'auto-linked');
      assert.equal(await readBy('hillcrest', `Patient/${lab}`), 404);
      assert.equal(await readBy('hillcrest', `Patient/${own}`), 404);
    });
  });
}
