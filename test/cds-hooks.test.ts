import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Resource } from '@medplum/fhirtypes';
import { addParticipant } from '../src/participants/participants.js';
import { createClient } from '../src/security/clients.js';
import { DEFAULT_TEST_EQUIVALENCES, setTestEquivalences } from '../src/record/test-equivalences.js';
import { BACKENDS } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

/*
 * CDS Hooks 2.0 duplicate-order services, called as an EHR would: requests in the specification's shape
 * (hook, hookInstance, context.patientId / draftOrders / selections, prefetch or fhirServer +
 * fhirAuthorization), signed by the EHR's key (ES384 JWT). The EHR's FHIR server is a real HTTP server
 * started here. The clinical content is written for the test (LOINC, RxNorm codes).
 */

const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();
const EHR_MRN = 'urn:oid:2.16.840.1.113883.19.201';
const EHR_PATIENT = { resourceType: 'Patient', id: 'ehr-55', identifier: [{ system: EHR_MRN, value: 'E-5501' }], name: [{ family: 'Lindqvist', given: ['Maja'] }], birthDate: '1957-02-20', gender: 'female' };

for (const backend of BACKENDS) {
  describe(`CDS Hooks: duplicate tests and therapy (${backend})`, () => {
    let s: TestServer;
    let key: CryptoKey;
    let clientId: string;
    let ehr: Server;
    let ehrUrl: string;
    let ehrRequests = 0;

    const jwt = async (service: string, overrides: { aud?: string; jti?: string } = {}) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: 'ehr-1' })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(overrides.aud ?? `${s.url}/cds-services/${service}`)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(overrides.jti ?? randomUUID())
        .sign(key);
    const call = async (service: string, body: unknown, token?: string) => {
      const res = await fetch(`${s.url}/cds-services/${service}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token ?? (await jwt(service))}` }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    const draft = (id: string, system: string, code: string, display: string) => ({ resourceType: 'ServiceRequest', id, status: 'draft', intent: 'order', subject: { reference: 'Patient/ehr-55' }, code: { coding: [{ system, code, display }] } });
    const orderSign = (drafts: unknown[], extra: Record<string, unknown> = { prefetch: { patient: EHR_PATIENT } }) => ({
      hookInstance: randomUUID(),
      hook: 'order-sign',
      context: { userId: 'Practitioner/ehr-dr-1', patientId: 'ehr-55', draftOrders: { resourceType: 'Bundle', type: 'collection', entry: drafts.map((resource) => ({ resource })) } },
      ...extra,
    });
    const a1cDraft = draft('sr-a1c', 'http://loinc.org', '4548-4', 'Hemoglobin A1c');

    before(async () => {
      s = await startTestServer(backend);
      // Two participants' records of Maja, linked by the MPI; results and orders as their systems send them.
      const lab = await addParticipant(s.tessera.repo, { name: 'Northfield Lab', mrnSystem: 'urn:oid:2.16.840.1.113883.19.202', scope: 'system/*.cruds' });
      const labToken = await getToken(s.url, lab.client!.clientId, lab.client!.clientSecret as string);
      const clinic = await addParticipant(s.tessera.repo, { name: 'Bayview Clinic', mrnSystem: EHR_MRN, scope: 'system/*.cruds' });
      const clinicToken = await getToken(s.url, clinic.client!.clientId, clinic.client!.clientSecret as string);
      const post = async (token: string, r: Resource): Promise<string> => {
        const res = await s.fhir('POST', r.resourceType, r, { authorization: `Bearer ${token}` });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body.id;
      };
      const demographics = { name: EHR_PATIENT.name, birthDate: EHR_PATIENT.birthDate, gender: 'female', telecom: [{ system: 'phone', value: '508-555-0199' }], address: [{ line: ['7 Quarry Road'], city: 'Rockport', postalCode: '01966' }] };
      const atLab = await post(labToken, { resourceType: 'Patient', identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.202', value: 'N-77' }], ...demographics } as Resource);
      const atClinic = await post(clinicToken, { resourceType: 'Patient', identifier: EHR_PATIENT.identifier, ...demographics } as Resource);
      const loinc = (code: string, display: string) => ({ coding: [{ system: 'http://loinc.org', code, display }] });
      await post(labToken, { resourceType: 'Observation', status: 'final', subject: { reference: `Patient/${atLab}` }, code: loinc('4548-4', 'Hemoglobin A1c'), effectiveDateTime: ago(30), valueQuantity: { value: 7.1, unit: '%', system: 'http://unitsofmeasure.org', code: '%' } } as Resource);
      await post(labToken, { resourceType: 'Observation', status: 'final', subject: { reference: `Patient/${atLab}` }, code: loinc('2093-3', 'Cholesterol'), effectiveDateTime: ago(400), valueQuantity: { value: 212, unit: 'mg/dL' } } as Resource);
      await post(clinicToken, { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${atClinic}` }, code: loinc('57698-3', 'Lipid panel'), authoredOn: ago(10) } as Resource);
      await post(labToken, { resourceType: 'DiagnosticReport', status: 'final', subject: { reference: `Patient/${atLab}` }, code: loinc('24725-4', 'CT Head'), effectiveDateTime: ago(45), conclusion: 'No acute findings' } as Resource);
      await post(clinicToken, { resourceType: 'MedicationStatement', status: 'active', subject: { reference: `Patient/${atClinic}` }, medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin 500 MG Extended Release Oral Tablet' }] }, effectiveDateTime: ago(200) } as Resource);
      // The EHR: a CDS client with a registered public key, and its FHIR server.
      const pair = await generateKeyPair('ES384');
      key = pair.privateKey;
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'ehr-1', alg: 'ES384' };
      const reads = 'Patient Observation DiagnosticReport Procedure ImagingStudy ServiceRequest MedicationRequest MedicationStatement'.split(' ').map((t) => `system/${t}.rs`).join(' ');
      clientId = (await createClient(s.tessera.db, { name: 'Bayview EHR (CDS client)', scope: reads, jwks: { keys: [jwk] } })).clientId;
      ehr = createServer((req, res) => {
        ehrRequests++;
        if (req.url === '/fhir/Patient/ehr-55' && req.headers.authorization === 'Bearer ehr-access-token') {
          res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(EHR_PATIENT));
        } else {
          res.writeHead(401).end();
        }
      });
      await new Promise<void>((resolve) => ehr.listen(0, '127.0.0.1', resolve));
      ehrUrl = `http://127.0.0.1:${(ehr.address() as { port: number }).port}/fhir`;
    });
    after(async () => {
      ehr?.close();
      await s?.close();
    });

    it('discovery lists the order-select and order-sign services with their prefetch', async () => {
      const res = await fetch(`${s.url}/cds-services`);
      assert.equal(res.status, 200);
      const { services } = (await res.json()) as any;
      assert.deepEqual(services.map((x: any) => x.hook).sort(), ['order-select', 'order-sign']);
      assert.ok(services.every((x: any) => x.prefetch.patient === 'Patient/{{context.patientId}}' && x.id && x.description));
      // The equivalences in force, for clients to offer (the portal's test list): the shipped defaults here.
      for (const service of services) assert.deepEqual(service.extension['dev.tessera.test-equivalences'].map((e: any) => e.id), ['hba1c', 'lipid-panel', 'head-ct']);
    });

    it('order-sign with prefetch: an HbA1c resulted 30 days ago elsewhere is a duplicate (window 90 days), with value, date and source', async () => {
      const res = await call('duplicate-orders-sign', orderSign([a1cDraft]));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.cards.length, 1);
      const [card] = res.body.cards;
      assert.equal(card.indicator, 'warning');
      assert.match(card.summary, /Hemoglobin A1c resulted/);
      assert.match(card.detail, /7\.1 %/);
      assert.match(card.detail, /Northfield Lab/);
      assert.match(card.detail, new RegExp(ago(30).slice(0, 10)));
      assert.equal(card.suggestions[0].actions[0].resourceId, 'ServiceRequest/sr-a1c');
      assert.ok(card.source.label && card.uuid);
    });

    it('order-select without prefetch reads the EHR patient from its FHIR server; a pending lipid order counts, an old result does not', async () => {
      const before = ehrRequests;
      const body = {
        ...orderSign([draft('sr-lipid', 'http://loinc.org', '57698-3', 'Lipid panel'), a1cDraft], { fhirServer: ehrUrl, fhirAuthorization: { access_token: 'ehr-access-token', token_type: 'Bearer', expires_in: 300, scope: 'patient/Patient.r', subject: 'tessera' } }),
        hook: 'order-select',
      };
      (body.context as any).selections = ['ServiceRequest/sr-lipid'];
      const res = await call('duplicate-orders-select', body);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(ehrRequests, before + 1, 'the patient was read from the EHR');
      assert.equal(res.body.cards.length, 1, 'only the selected order is checked');
      assert.match(res.body.cards[0].summary, /Lipid panel already ordered/);
      assert.match(res.body.cards[0].detail, /Bayview Clinic/);
      assert.doesNotMatch(res.body.cards[0].detail, /212/, 'the cholesterol of 400 days ago is outside the 1-year window');
    });

    it('outside the window no card: a head CT 45 days ago (window 30 days); an unknown patient: no card', async () => {
      const ct = await call('duplicate-orders-sign', orderSign([draft('sr-ct', 'http://loinc.org', '24725-4', 'CT Head')]));
      assert.deepEqual(ct.body.cards, []);
      const stranger = await call('duplicate-orders-sign', orderSign([a1cDraft], { prefetch: { patient: { ...EHR_PATIENT, identifier: [{ system: EHR_MRN, value: 'nobody' }] } } }));
      assert.deepEqual(stranger.body.cards, []);
    });

    it('duplicate therapy: a draft MedicationRequest for a medication already active elsewhere', async () => {
      const med = { resourceType: 'MedicationRequest', id: 'mr-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/ehr-55' }, medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin 500 MG Extended Release Oral Tablet' }] } };
      const res = await call('duplicate-orders-sign', orderSign([med]));
      assert.equal(res.body.cards.length, 1);
      assert.match(res.body.cards[0].summary, /duplicate therapy: metformin/);
      assert.match(res.body.cards[0].detail, /Bayview Clinic/);
    });

    it('duplicate therapy at ingredient level: another strength and form of metformin, and a combination containing it; another drug: no card', async () => {
      const rx = (id: string, code: string, display: string) => ({ resourceType: 'MedicationRequest', id, status: 'draft', intent: 'order', subject: { reference: 'Patient/ehr-55' }, medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code, display }] } });
      // RxNorm SCDs (names as RxNorm writes them): metformin hydrochloride 1000 MG tablet; sitagliptin/metformin.
      const other = await call('duplicate-orders-sign', orderSign([rx('mr-2', '861004', 'metformin hydrochloride 1000 MG Oral Tablet')]));
      assert.equal(other.body.cards.length, 1, JSON.stringify(other.body));
      assert.match(other.body.cards[0].summary, /metformin already active/);
      assert.match(other.body.cards[0].detail, /same ingredient: metformin/);
      const combination = await call('duplicate-orders-sign', orderSign([rx('mr-3', '861819', 'sitagliptin 50 MG / metformin hydrochloride 1000 MG Oral Tablet')]));
      assert.equal(combination.body.cards.length, 1);
      const unrelated = await call('duplicate-orders-sign', orderSign([rx('mr-4', '314076', 'lisinopril 10 MG Oral Tablet')]));
      assert.deepEqual(unrelated.body.cards, []);
    });

    it('equivalences and windows are data: a 20-day HbA1c window drops the card; malformed data is refused', async () => {
      await setTestEquivalences(s.tessera.db, DEFAULT_TEST_EQUIVALENCES.map((e) => (e.id === 'hba1c' ? { ...e, lookbackDays: 20 } : e)));
      assert.deepEqual((await call('duplicate-orders-sign', orderSign([a1cDraft]))).body.cards, []);
      await assert.rejects(setTestEquivalences(s.tessera.db, [{ id: 'x', name: 'X', lookbackDays: -1, codes: [] }]), /entry 1 \(x\): lookbackDays/);
      await setTestEquivalences(s.tessera.db, DEFAULT_TEST_EQUIVALENCES);
      assert.equal((await call('duplicate-orders-sign', orderSign([a1cDraft]))).body.cards.length, 1);
    });

    it('tessera record equivalences prints and replaces them; a malformed file is refused naming the entry', async () => {
      const env = { DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' };
      const data = ['--data', s.tessera.config.dataDir];
      const shown = await tessera(['record', 'equivalences', ...data], env);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(JSON.parse(shown.stdout).map((e: any) => e.id), ['hba1c', 'lipid-panel', 'head-ct']);
      const dir = mkdtempSync(join(tmpdir(), 'equivalences-'));
      const file = join(dir, 'eq.json');
      writeFileSync(file, JSON.stringify([{ id: 'hba1c', name: 'HbA1c', lookbackDays: 10, codes: [{ system: 'http://loinc.org', code: '4548-4' }] }, { id: 'hba1c', name: 'again', lookbackDays: 1, codes: [] }]));
      const refused = await tessera(['record', 'equivalences', ...data, '--set', file], env);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /entry 2 \(hba1c\): the id is used twice/);
      writeFileSync(file, JSON.stringify([{ id: 'hba1c', name: 'HbA1c', lookbackDays: 10, codes: [{ system: 'http://loinc.org', code: '4548-4' }] }]));
      const set = await tessera(['record', 'equivalences', ...data, '--set', file], env);
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual((await call('duplicate-orders-sign', orderSign([a1cDraft]))).body.cards, [], 'a 10-day window: the 30-day-old result is no duplicate');
      await setTestEquivalences(s.tessera.db, DEFAULT_TEST_EQUIVALENCES);
      rmSync(dir, { recursive: true, force: true });
    });

    it('a Tessera access token (the portal calls with its user\'s) reads as its holder; a forged one is 401', async () => {
      const reads = 'Patient Observation DiagnosticReport Procedure ImagingStudy ServiceRequest MedicationRequest MedicationStatement'.split(' ').map((t) => `system/${t}.rs`).join(' ');
      const res = await call('duplicate-orders-sign', orderSign([a1cDraft]), await s.tokenFor(reads));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.match(res.body.cards[0]?.summary ?? '', /Hemoglobin A1c resulted/);
      const other = await generateKeyPair('ES256');
      const forged = await new SignJWT({ scope: 'system/*.cruds', client_id: clientId }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).setSubject(clientId).setIssuedAt().setExpirationTime('5m').setJti(randomUUID()).sign(other.privateKey);
      assert.equal((await call('duplicate-orders-sign', orderSign([a1cDraft]), forged)).status, 401);
    });

    it('the CDS client must sign: no JWT, another audience, a replayed jti, or an unknown key are 401; a bad request 400', async () => {
      assert.equal((await call('duplicate-orders-sign', orderSign([a1cDraft]), 'not-a-jwt')).status, 401);
      assert.equal((await call('duplicate-orders-sign', orderSign([a1cDraft]), await jwt('duplicate-orders-sign', { aud: 'https://elsewhere/cds-services/x' }))).status, 401);
      const once = await jwt('duplicate-orders-sign', { jti: 'fixed-jti' });
      assert.equal((await call('duplicate-orders-sign', orderSign([a1cDraft]), once)).status, 200);
      assert.equal((await call('duplicate-orders-sign', orderSign([a1cDraft]), once)).status, 401);
      const other = await generateKeyPair('ES384');
      const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES384' }).setIssuer(clientId).setSubject(clientId).setAudience(`${s.url}/cds-services/duplicate-orders-sign`).setIssuedAt().setExpirationTime('5m').setJti(randomUUID()).sign(other.privateKey);
      assert.equal((await call('duplicate-orders-sign', orderSign([a1cDraft]), forged)).status, 401);
      assert.equal((await call('duplicate-orders-sign', { hook: 'order-sign' })).status, 400);
    });
  });
}
