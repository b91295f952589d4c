import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { setClearance } from '../src/consent/clearance.js';
import { addParticipant } from '../src/participants/participants.js';
import { FhirEngine } from '../src/engine/fhir-engine.js';
import { requestFor } from '../src/engine/fhir-request.js';
import { parseScopes } from '../src/security/scopes.js';
import type { AuthContext } from '../src/security/token-service.js';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { bodyOf, engineAs, privacyConsent } from './helpers/governance.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

/**
 * Security labels, consent and break-the-glass, end to end through the engine and the database. Data: a
 * synthetic community written below: two participant organisations (Riverside, Hillcrest) with their
 * clients, patients with vital signs, an HIV viral load (LOINC 20447-9), an opioid dependence diagnosis
 * (ICD-10-CM F11.20) and a depression diagnosis (SNOMED 35489007), and Consents in the forms of IHE
 * Privacy Consent on FHIR.
 */
const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

const labelsOf = (r: Resource) => (r.meta?.security ?? []).map((c) => `${c.system === ACT ? 'act' : c.system === CONF ? 'conf' : c.system}:${c.code}`).sort();
const idsOf = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource?.id as string).sort();
const suppressed = (b: Bundle) => (b.entry ?? []).some((e) => e.resource?.resourceType === 'OperationOutcome' && (e.resource as any).issue.some((i: any) => i.code === 'suppressed'));

for (const backend of BACKENDS) {
  describe(`security labels, consent, break-the-glass (${backend})`, () => {
    let s: TestServer;
    const ids: Record<string, string> = {};
    const tokens: Record<string, string> = {};
    const h = (name: string) => ({ authorization: `Bearer ${tokens[name]}` });

    const engine = (auth: AuthContext, method: string, path: string, body?: unknown) => engineAs(s, auth, method, path, body);

    before(async () => {
      s = await startTestServer(backend);
      const repo = s.tessera.repo;
      for (const [key, name] of [['riverside', 'Riverside Clinic'], ['hillcrest', 'Hillcrest Hospital']]) {
        const { participant, client } = await addParticipant(repo, { name, mrnSystem: `urn:example:${key}:mrn`, scope: 'system/*.rs' });
        ids[key] = participant.organizationId;
        tokens[key] = await getToken(s.url, client!.clientId, client!.clientSecret as string);
      }
      const post = async (r: Resource) => (await s.fhir('POST', r.resourceType, r)).body as Resource;
      const patient = async (family: string) => (await post({ resourceType: 'Patient', name: [{ family, given: ['Test'] }], birthDate: '1970-01-01' })).id as string;
      ids.ann = await patient('Ashworth');
      ids.ben = await patient('Barrow');
      const subject = (p: string) => ({ reference: `Patient/${p}` });
      for (const p of ['ann', 'ben']) {
        ids[`${p}Pulse`] = (await post({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: subject(ids[p]), valueQuantity: { value: 70 } })).id as string;
        ids[`${p}Hiv`] = (await post({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '20447-9', display: 'HIV 1 RNA' }] }, subject: subject(ids[p]), valueQuantity: { value: 40000 } })).id as string;
        ids[`${p}Oud`] = (await post({ resourceType: 'Condition', code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'F11.20' }] }, subject: subject(ids[p]) })).id as string;
        ids[`${p}Dep`] = (await post({ resourceType: 'Condition', code: { coding: [{ system: 'http://snomed.info/sct', code: '35489007' }] }, subject: subject(ids[p]) })).id as string;
      }
    });
    after(async () => s?.close());

    it('labels every version from its codes: HIV, ETH (42 CFR Part 2), PSY with confidentiality R; plain data unlabelled; the sender\'s labels kept', async () => {
      const read = async (type: string, id: string) => (await s.fhir('GET', `${type}/${id}`)).body as Resource;
      assert.deepEqual(labelsOf(await read('Observation', ids.annHiv)), ['act:HIV', 'conf:R']);
      assert.deepEqual(labelsOf(await read('Condition', ids.annOud)), ['act:ETH', 'conf:R']);
      assert.deepEqual(labelsOf(await read('Condition', ids.annDep)), ['act:PSY', 'conf:R']);
      assert.deepEqual(labelsOf(await read('Observation', ids.annPulse)), []);
      // An update keeps labelling (the sender does not echo the labels back).
      const hiv = await read('Observation', ids.annHiv);
      const updated = await s.fhir('PUT', `Observation/${ids.annHiv}`, { ...hiv, meta: undefined, valueQuantity: { value: 20 } });
      assert.equal(updated.body.meta.versionId, '2');
      assert.deepEqual(labelsOf(updated.body), ['act:HIV', 'conf:R']);
      const sent = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', meta: { security: [{ system: CONF, code: 'V' }] }, code: { text: 'note' }, subject: { reference: `Patient/${ids.ben}` } });
      assert.deepEqual(labelsOf(sent.body), ['conf:V']);
      ids.benV = sent.body.id;
    });

    it('labels a resource by what it takes its meaning from: a prescription of a Medication that is buprenorphine (ETH), a report whose result is an HIV viral load (HIV)', async () => {
      // A transaction as an EHR sends a prescription: the Medication (RxNorm 1819, buprenorphine) and the
      // MedicationRequest naming it by reference; then a lab's report over the HIV result stored above.
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:3f1c2d4e-0000-4000-8000-000000000001', resource: { resourceType: 'Medication', code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1819' }] } }, request: { method: 'POST', url: 'Medication' } },
          { resource: { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${ids.ben}` }, medicationReference: { reference: 'urn:uuid:3f1c2d4e-0000-4000-8000-000000000001' }, dosageInstruction: [{ text: '8 mg sublingual daily' }] }, request: { method: 'POST', url: 'MedicationRequest' } },
        ],
      };
      const written = await s.fhir('POST', '', bundle);
      assert.equal(written.status, 200, JSON.stringify(written.body));
      const prescription = /MedicationRequest\/([^/]+)/.exec(written.body.entry[1].response.location)?.[1] as string;
      assert.deepEqual(labelsOf((await s.fhir('GET', `MedicationRequest/${prescription}`)).body), ['act:ETH', 'conf:R']);
      assert.equal((await s.fhir('GET', `MedicationRequest/${prescription}`, undefined, h('riverside'))).status, 404);
      const report = await s.fhir('POST', 'DiagnosticReport', { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'Viral load panel' }, subject: { reference: `Patient/${ids.ben}` }, result: [{ reference: `Observation/${ids.benHiv}` }], conclusion: 'Detectable' });
      assert.deepEqual(labelsOf(report.body), ['act:HIV', 'conf:R']);
      assert.equal((await s.fhir('GET', `DiagnosticReport/${report.body.id}`, undefined, h('riverside'))).status, 404);
      // A report over plain results stays unlabelled.
      const plain = await s.fhir('POST', 'DiagnosticReport', { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'Vitals' }, subject: { reference: `Patient/${ids.ben}` }, result: [{ reference: `Observation/${ids.benPulse}` }] });
      assert.deepEqual(labelsOf(plain.body), []);
    });

    it('withholds labelled data from a client without clearance: not read, searched, counted, included; the searchset says suppressed', async () => {
      const search = await s.fhir('GET', `Observation?subject=Patient/${ids.ann}&_total=accurate`, undefined, h('riverside'));
      assert.deepEqual(idsOf(search.body), [ids.annPulse]);
      assert.equal(search.body.total, 1);
      assert.ok(suppressed(search.body));
      assert.equal((await s.fhir('GET', `Observation/${ids.annHiv}`, undefined, h('riverside'))).status, 404);
      assert.equal((await s.fhir('GET', `Observation?code=http://loinc.org|20447-9&_summary=count`, undefined, h('riverside'))).body.total, 0);
      const rev = await s.fhir('GET', `Patient?_id=${ids.ann}&_revinclude=Condition:subject&_revinclude=Observation:subject`, undefined, h('riverside'));
      assert.deepEqual(idsOf(rev.body), [ids.ann, ids.annPulse].sort());
      const has = await s.fhir('GET', 'Patient?_has:Condition:subject:code=http://hl7.org/fhir/sid/icd-10-cm|F11.20', undefined, h('riverside'));
      assert.deepEqual(idsOf(has.body), []);
      const everything = bodyOf(await engine({ clientId: 'x', scopes: parseScopes('system/*.rs') }, 'GET', `Patient/${ids.ann}/$everything`));
      assert.deepEqual(idsOf(everything), [ids.ann, ids.annPulse].sort());
      // Said whether the page is empty (every match withheld) or sorted (not driven by one index lookup).
      const onlyWithheld = await s.fhir('GET', 'Observation?code=http://loinc.org|20447-9', undefined, h('riverside'));
      assert.deepEqual(idsOf(onlyWithheld.body), []);
      assert.ok(suppressed(onlyWithheld.body));
      const sorted = await s.fhir('GET', `Observation?subject=Patient/${ids.ann}&_sort=-date`, undefined, h('riverside'));
      assert.deepEqual(idsOf(sorted.body), [ids.annPulse]);
      assert.ok(suppressed(sorted.body));
      // No suppressed notice where nothing labelled matched.
      assert.ok(!suppressed((await s.fhir('GET', `Observation?code=http://loinc.org|8867-4`, undefined, h('riverside'))).body));
      // A very restricted record: only with clearance V.
      assert.equal((await s.fhir('GET', `Observation/${ids.benV}`, undefined, h('riverside'))).status, 404);
      // Type and system history cannot leave labelled versions out: refused to a client without clearance.
      assert.equal((await s.fhir('GET', 'Observation/_history', undefined, h('riverside'))).status, 403);
      assert.equal((await s.fhir('GET', '_history', undefined, h('riverside'))).status, 403);
    });

    it('past versions are judged by their own labels: an HIV result recoded to a plain one keeps its first version out of reach', async () => {
      // A lab first sends a result under the HIV viral-load code, then corrects the code to a blood count:
      // the current version is unlabelled, the first one was labelled HIV. (A patient of its own.)
      const cora = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Carver', given: ['Test'] }], birthDate: '1971-02-02' })).body.id as string;
      const first = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '20447-9' }] }, subject: { reference: `Patient/${cora}` }, valueQuantity: { value: 900 } });
      const id = first.body.id as string;
      assert.deepEqual(labelsOf(first.body), ['act:HIV', 'conf:R']);
      const corrected = await s.fhir('PUT', `Observation/${id}`, { resourceType: 'Observation', id, status: 'corrected', code: { coding: [{ system: 'http://loinc.org', code: '6690-2' }] }, subject: { reference: `Patient/${cora}` }, valueQuantity: { value: 9 } });
      assert.deepEqual(labelsOf(corrected.body), []);
      assert.equal((await s.fhir('GET', `Observation/${id}`, undefined, h('riverside'))).status, 200);
      assert.equal((await s.fhir('GET', `Observation/${id}/_history/2`, undefined, h('riverside'))).status, 200);
      assert.equal((await s.fhir('GET', `Observation/${id}/_history/1`, undefined, h('riverside'))).status, 404);
      const history = await s.fhir('GET', `Observation/${id}/_history`, undefined, h('riverside'));
      assert.equal(history.status, 200);
      assert.equal(history.body.total, 1, 'the labelled version is not counted either');
      assert.deepEqual(history.body.entry.map((e: any) => e.resource.meta.versionId), ['2']);
      // The exchange itself (unrestricted) sees both.
      assert.equal((await s.fhir('GET', `Observation/${id}/_history`)).body.total, 2);
      assert.equal((await s.fhir('GET', `Observation/${id}/_history/1`)).status, 200);
    });

    it('clearance for one kind (a public-health client cleared for HIV) reads that kind only', async () => {
      const token = await s.tokenFor('system/Observation.rs system/Condition.rs');
      const client = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub as string;
      await setClearance(s.tessera.db, `client:${client}`, ['HIV']);
      const obs = await s.fhir('GET', `Observation?subject=Patient/${ids.ann}`, undefined, { authorization: `Bearer ${token}` });
      assert.deepEqual(idsOf(obs.body), [ids.annHiv, ids.annPulse].sort());
      const conditions = await s.fhir('GET', `Condition?subject=Patient/${ids.ann}`, undefined, { authorization: `Bearer ${token}` });
      assert.deepEqual(idsOf(conditions.body), []);
    });

    it('consent: denying one organization hides the patient from it at the next request, not from others; revoking restores', async () => {
      const consent = await s.fhir('POST', 'Consent', privacyConsent(ids.ben, { type: 'permit', provision: [{ type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${ids.hillcrest}` } }] }] }));
      assert.equal(consent.status, 201);
      assert.equal((await s.fhir('GET', `Patient/${ids.ben}`, undefined, h('hillcrest'))).status, 404);
      assert.deepEqual(idsOf((await s.fhir('GET', `Observation?subject=Patient/${ids.ben}`, undefined, h('hillcrest'))).body), []);
      assert.equal((await s.fhir('GET', `Patient?_id=${ids.ben}&_summary=count`, undefined, h('hillcrest'))).body.total, 0);
      // Nor through the history of every Patient, which cannot leave the denied patient out: refused.
      assert.equal((await s.fhir('GET', 'Patient/_history', undefined, h('hillcrest'))).status, 403);
      assert.equal((await s.fhir('GET', `Patient/${ids.ben}`, undefined, h('riverside'))).status, 200);
      assert.deepEqual(idsOf((await s.fhir('GET', `Observation?subject=Patient/${ids.ben}`, undefined, h('riverside'))).body), [ids.benPulse]);
      // Revoked (status inactive): the next request sees the patient again.
      assert.equal((await s.fhir('PUT', `Consent/${consent.body.id}`, { ...consent.body, status: 'inactive' })).status, 200);
      assert.equal((await s.fhir('GET', `Patient/${ids.ben}`, undefined, h('hillcrest'))).status, 200);
    });

    it('consent: denying a class of data (PSY) withholds it even from a cleared client; other data stays', async () => {
      const consent = await s.fhir('POST', 'Consent', privacyConsent(ids.ann, { type: 'permit', provision: [{ type: 'deny', securityLabel: [{ system: ACT, code: 'PSY' }] }] }));
      assert.equal(consent.status, 201);
      const admin = await s.fhir('GET', `Condition?subject=Patient/${ids.ann}`);
      assert.deepEqual(idsOf(admin.body), [ids.annOud]);
      assert.ok([200, 204].includes((await s.fhir('DELETE', `Consent/${consent.body.id}`)).status));
      assert.deepEqual(idsOf((await s.fhir('GET', `Condition?subject=Patient/${ids.ann}`)).body), [ids.annDep, ids.annOud].sort());
    });

    it('consent: permit treatment only (deny, except for TREAT) by the token\'s purpose of use', async () => {
      const consent = await s.fhir('POST', 'Consent', privacyConsent(ids.ben, { type: 'deny', provision: [{ type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] }] }));
      const scopes = parseScopes('system/*.rs');
      const as = (purposeOfUse?: string): AuthContext => ({ clientId: 'clinic', scopes, organization: `Organization/${ids.riverside}`, purposeOfUse });
      assert.equal((await engine(as('TREAT'), 'GET', `Patient/${ids.ben}`)).status, 200);
      await assert.rejects(engine(as('HPAYMT'), 'GET', `Patient/${ids.ben}`), { status: 404 });
      await assert.rejects(engine(as(undefined), 'GET', `Patient/${ids.ben}`), { status: 404 });
      assert.deepEqual(idsOf(bodyOf(await engine(as('HPAYMT'), 'GET', `Observation?subject=Patient/${ids.ben}`))), []);
      assert.equal((await s.fhir('DELETE', `Consent/${consent.body.id}`)).status, 200);
    });

    it('consent: permitting a sensitive class (ETH, 42 CFR Part 2) to one organization lets it read that class for that patient only', async () => {
      const consent = await s.fhir('POST', 'Consent', privacyConsent(ids.ann, { type: 'permit', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${ids.riverside}` } }], securityLabel: [{ system: ACT, code: 'ETH' }] }));
      assert.equal(consent.status, 201);
      assert.deepEqual(idsOf((await s.fhir('GET', 'Condition?code=http://hl7.org/fhir/sid/icd-10-cm|F11.20', undefined, h('riverside'))).body), [ids.annOud]);
      assert.deepEqual(idsOf((await s.fhir('GET', 'Condition?code=http://hl7.org/fhir/sid/icd-10-cm|F11.20', undefined, h('hillcrest'))).body), []);
      await s.fhir('DELETE', `Consent/${consent.body.id}`);
    });

    it('a consent stored with parts Tessera does not enforce, or with no effect at all, says so in the answer', async () => {
      const asOutcome = { prefer: 'return=OperationOutcome' };
      const countOfBen = async () => (await s.fhir('GET', `Consent?patient=Patient/${ids.ben}&_summary=count`)).body.total as number;
      const before = await countOfBen();
      const warningsOf = (res: { body: any }) => (res.body.issue ?? []).filter((i: any) => i.severity === 'warning').map((i: any) => i.diagnostics as string);
      // A deny of one named Observation: data references are not enforced, so the deny covers everything of the patient's.
      const narrowed = await s.fhir('POST', 'Consent', privacyConsent(ids.ben, { type: 'permit', provision: [{ type: 'deny', data: [{ meaning: 'instance', reference: { reference: `Observation/${ids.benPulse}` } }] }] }), asOutcome);
      assert.equal(narrowed.status, 201);
      assert.deepEqual(warningsOf(narrowed), ["Consent.provision.provision[0]: data is not enforced: the deny is applied to all of the patient's data"]);
      // An absolute patient reference is not resolved: the consent protects nobody, and the privacy officer is told.
      const absolute = await s.fhir('POST', 'Consent', { ...privacyConsent(ids.ben, { type: 'deny' }), patient: { reference: `https://elsewhere.example.org/fhir/Patient/${ids.ben}` } }, asOutcome);
      assert.equal(absolute.status, 201);
      assert.match(warningsOf(absolute).join(), /has no effect: Consent.patient must be a relative reference/);
      // A consent taken as written has no warning.
      const plain = await s.fhir('POST', 'Consent', privacyConsent(ids.ben, { type: 'permit', provision: [{ type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${ids.hillcrest}` } }] }] }), asOutcome);
      assert.deepEqual(warningsOf(plain), []);
      for (const res of [narrowed, absolute, plain]) {
        const id = /\/Consent\/([^/]+)\//.exec(res.headers.get('location') ?? '')?.[1];
        assert.ok([200, 204].includes((await s.fhir('DELETE', `Consent/${id}`)).status));
      }
      assert.equal(await countOfBen(), before);
    });

    it('a malformed consent is refused with 400 and changes nothing', async () => {
      const bad = await s.fhir('POST', 'Consent', { ...privacyConsent(ids.ann, { actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${ids.hillcrest}` } }] }), policyRule: { text: 'the community policy' } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.resourceType, 'OperationOutcome');
      assert.equal((await s.fhir('GET', `Consent?patient=Patient/${ids.ann}&_summary=count`)).body.total, 0);
    });

    it('break-the-glass: a clinician reads a denied patient and labelled data for a limited time; others do not; privacy officers review it', async () => {
      const consent = await s.fhir('POST', 'Consent', privacyConsent(ids.ben, { type: 'deny' }));
      const scopes = parseScopes('user/*.rs');
      const clinician: AuthContext = { clientId: 'portal', scopes, user: { id: 'u-1', role: 'clinician', fhirUser: 'Practitioner/p1' }, organization: `Organization/${ids.riverside}`, purposeOfUse: 'ETREAT' };
      const colleague: AuthContext = { ...clinician, user: { id: 'u-2', role: 'clinician' } };
      // Through the engine's entry point, as every transport calls it, so that each access is audited.
      const audited = (who: AuthContext, path: string, requestId: string) => new FhirEngine(s.tessera.repo).handle(requestFor('GET', path, { auth: who, baseUrl: 'http://test/fhir' }), requestId);
      const purposesOf = async (requestId: string) => {
        await s.tessera.audit?.flush();
        const events = (await s.fhir('GET', `AuditEvent?agent=u-1&_count=1000`)).body.entry.map((e: any) => e.resource);
        const event = events.find((e: any) => e.entity.some((x: any) => x.what?.identifier?.value === requestId));
        assert.ok(event, `the AuditEvent of ${requestId}`);
        return (event.purposeOfEvent ?? []).map((p: any) => p.coding[0].code);
      };
      await assert.rejects(audited(clinician, `Patient/${ids.ben}`, 'btg-before'), { status: 404 });
      assert.deepEqual(await purposesOf('btg-before'), ['ETREAT']);
      const declare = (who: AuthContext, reason: string) => engine(who, 'POST', `Patient/${ids.ben}/$break-the-glass`, { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: reason }] });
      await assert.rejects(declare({ ...clinician, user: { id: 'u-3', role: 'steward' } }, 'curious'), { status: 403 });
      await assert.rejects(declare(clinician, ''), { status: 400 });
      assert.equal((await declare(clinician, 'Unconscious in the emergency department')).status, 200);
      assert.equal((await engine(clinician, 'GET', `Patient/${ids.ben}`)).status, 200);
      assert.deepEqual(idsOf(bodyOf(await engine(clinician, 'GET', `Observation?subject=Patient/${ids.ben}`))), [ids.benHiv, ids.benPulse, ids.benV].sort());
      await assert.rejects(engine(colleague, 'GET', `Patient/${ids.ben}`), { status: 404 });
      // Each use of the grant is flagged BTG in its AuditEvent, beside the declared purpose; other patients' are not.
      await audited(clinician, `Observation?subject=Patient/${ids.ben}`, 'btg-use');
      assert.deepEqual(await purposesOf('btg-use'), ['ETREAT', 'BTG']);
      await audited(clinician, `Observation?subject=Patient/${ids.ann}`, 'btg-other');
      assert.deepEqual(await purposesOf('btg-other'), ['ETREAT']);
      // Another patient's labelled data stays withheld for the clinician.
      assert.deepEqual(idsOf(bodyOf(await engine(clinician, 'GET', `Observation?subject=Patient/${ids.ann}`))), [ids.annPulse]);
      const officer: AuthContext = { clientId: 'portal', scopes, user: { id: 'u-9', role: 'privacy-officer' } };
      await assert.rejects(engine(clinician, 'GET', 'Patient/$break-the-glass-review'), { status: 403 });
      const list = (await engine(officer, 'GET', 'Patient/$break-the-glass-review')).body as any;
      assert.equal(list.parameter.length, 1);
      const grant = list.parameter[0].part;
      assert.equal(grant.find((p: any) => p.name === 'reason').valueString, 'Unconscious in the emergency department');
      assert.equal(grant.find((p: any) => p.name === 'holder').valueString, 'user:u-1');
      const id = grant.find((p: any) => p.name === 'id').valueString;
      assert.equal((await engine(officer, 'POST', 'Patient/$break-the-glass-review', { resourceType: 'Parameters', parameter: [{ name: 'grant', valueString: id }] })).status, 200);
      assert.equal(((await engine(officer, 'GET', 'Patient/$break-the-glass-review')).body as any).parameter.length, 0);

      // The emergency is over: the clinician ends the grant early, and the consent holds again at once.
      const end = (who: AuthContext) => engine(who, 'POST', `Patient/${ids.ben}/$break-the-glass`, { resourceType: 'Parameters', parameter: [{ name: 'end', valueBoolean: true }] });
      assert.equal(((await end(colleague)).body as any).parameter[0].valueInteger, 0, "a colleague ends nothing of another's");
      assert.equal((await engine(clinician, 'GET', `Patient/${ids.ben}`)).status, 200);
      assert.equal(((await end(clinician)).body as any).parameter[0].valueInteger, 1);
      await assert.rejects(engine(clinician, 'GET', `Patient/${ids.ben}`), { status: 404 });
      // A shorter grant may be asked for; a longer one than the community allows is a 400.
      const timed = (minutes: number) => engine(clinician, 'POST', `Patient/${ids.ben}/$break-the-glass`, { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: 'Seizure on arrival' }, { name: 'minutes', valueInteger: minutes }] });
      await assert.rejects(timed(61), { status: 400 });
      const short = (await timed(15)).body as any;
      assert.equal(short.parameter.find((p: any) => p.name === 'minutes').valueInteger, 15);
      const expires = Date.parse(short.parameter.find((p: any) => p.name === 'expires').valueInstant);
      assert.ok(expires > Date.now() + 14 * 60_000 && expires <= Date.now() + 15 * 60_000, 'expires in 15 minutes');
      assert.equal(((await end(clinician)).body as any).parameter[0].valueInteger, 1);
      assert.equal((await s.fhir('DELETE', `Consent/${consent.body.id}`)).status, 200);
    });

    it('an opted-out patient\'s consents and accounting of disclosures stay open to privacy officers; the record does not', async () => {
      const scopes = parseScopes('user/*.rs user/AuditEvent.rs');
      const officer: AuthContext = { clientId: 'portal', scopes, user: { id: 'u-9', role: 'privacy-officer', fhirUser: 'Practitioner/po' }, organization: `Organization/${ids.hillcrest}`, purposeOfUse: 'HOPERAT' };
      // Not u-1, who broke the glass for Ben above (it runs for an hour).
      const clinician: AuthContext = { clientId: 'portal', scopes, user: { id: 'u-3', role: 'clinician', fhirUser: 'Practitioner/p3' }, organization: `Organization/${ids.riverside}`, purposeOfUse: 'TREAT' };
      // Hillcrest read Ben's record before he opted out: a disclosure his accounting must list.
      assert.equal((await s.fhir('GET', `Patient/${ids.ben}`, undefined, h('hillcrest'))).status, 200);
      const optOut = await s.fhir('POST', 'Consent', privacyConsent(ids.ben, { type: 'deny' }));
      assert.equal(optOut.status, 201);
      try {
        assert.equal((await engine(officer, 'GET', `Patient/${ids.ben}`).catch((e) => e)).status, 404, 'the record itself stays withheld');
        // Hers: the opt-out and the revoked (inactive) deny of Hillcrest recorded above.
        const consents = bodyOf(await engine(officer, 'GET', `Consent?patient=Patient/${ids.ben}`)).entry?.map((e) => e.resource as any) ?? [];
        assert.deepEqual(consents.map((c) => c.status).sort(), ['active', 'inactive']);
        assert.ok(consents.some((c) => c.id === optOut.body.id));
        assert.equal((await engine(officer, 'GET', `Consent/${optOut.body.id}`)).status, 200);
        const accounting = (await engine(officer, 'GET', `Patient/${ids.ben}/$disclosures`)).body as any;
        assert.ok(accounting.parameter.some((p: any) => p.part.some((x: any) => x.name === 'interaction' && x.valueCode === 'read')), JSON.stringify(accounting));
        // Others are withheld from as before: a clinician sees neither the record nor the consent.
        assert.equal((await engine(clinician, 'GET', `Consent/${optOut.body.id}`).catch((e) => e)).status, 404);
        assert.deepEqual(idsOf(bodyOf(await engine(clinician, 'GET', `Consent?patient=Patient/${ids.ben}`))), []);
        assert.equal((await engine(clinician, 'GET', `Patient/${ids.ben}/$disclosures`).catch((e) => e)).status, 403);
      } finally {
        // The operator's client revokes it (the opt-out does not hide itself from those who record consents).
        assert.ok([200, 204].includes((await s.fhir('DELETE', `Consent/${optOut.body.id}`)).status));
      }
      assert.equal((await s.fhir('GET', `Patient/${ids.ben}`, undefined, h('hillcrest'))).status, 200, 'revoked: shared again');
    });
  });

  describe(`opt-in community (${backend})`, () => {
    let s: TestServer;
    before(async () => {
      const store = testConfig(backend);
      store.config.consentDefault = 'opt-in';
      s = await startTestServer(backend, store);
    });
    after(async () => s?.close());

    it('shares a patient\'s data only once the patient permits it', async () => {
      const patient = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Optin' }] })).body.id;
      await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${patient}` } });
      const reader = { authorization: `Bearer ${await s.tokenFor('system/*.rs')}` };
      assert.equal((await s.fhir('GET', `Patient/${patient}`, undefined, reader)).status, 404);
      assert.equal((await s.fhir('GET', 'Observation?_summary=count', undefined, reader)).body.total, 0);
      assert.equal((await s.fhir('POST', 'Consent', privacyConsent(patient, { type: 'permit' }))).status, 201);
      assert.equal((await s.fhir('GET', `Patient/${patient}`, undefined, reader)).status, 200);
      assert.equal((await s.fhir('GET', 'Observation?_summary=count', undefined, reader)).body.total, 1);
    });
  });
}
