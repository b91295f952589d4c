import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender } from './helpers/mllp.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Sender styles: an ambulatory EHR's outbound lab orders (ORM^O01 v2.3, as in the FHIR-Converter sample
 * LAB-ORM-1: ORC/OBR with placer and filler numbers, ordering provider in ORC-12, priority in OBR-27) and
 * a v2.5.1 laboratory order (OML^O21 with TQ1 and SPM, as in the sample OML-O21-01), from a clinic that
 * also receives and forwards its reference lab's results (ORU^R01) through the same interface engine.
 * A second sender, the reference lab itself, reports results naming the clinic's placer application
 * (ORC-2 namespace), so its results meet the clinic's order. Names and numbers are made up.
 */
const PID = 'PID|1||C-40021^^^NORTHCLINIC^MR||Ortega^Lucia^M||19810412|F';
const orm = (control: string, orcControl: string, placer: string, extra: { orderStatus?: string; code?: string } = {}) =>
  [
    `MSH|^~\\&|EHR|NORTHCLINIC|LIS|ACMELAB|20261201093000||ORM^O01|${control}|P|2.3`,
    PID,
    'PV1|1|O|CLINIC^^^NORTH',
    `ORC|${orcControl}|${placer}^NORTHEHR|||${extra.orderStatus ?? ''}||^^^20261202080000^^S||20261201092900|^ENTRY^ELLA||1234567890^WELBY^MARCUS^^^DR`,
    `OBR|1|${placer}^NORTHEHR||${extra.code ?? '24317-0^Hemogram and platelet count, automated^LN'}|||20261201092900||||||||||||||||||||^^^20261202080000^^S||||R53.83^Fatigue^I10`,
  ].join('\r');

for (const backend of BACKENDS) {
  describe(`HL7 v2 orders to ServiceRequest (${backend})`, () => {
    let s: TestServer;
    let clinic: MllpSender;
    const requestFor = async (placer: string) => {
      const bundle = (await s.fhir('GET', `ServiceRequest?identifier=${encodeURIComponent(`urn:tessera:hl7v2:order-assigner:NORTHEHR|${placer}`)}`)).body;
      assert.equal(bundle.entry?.length, 1, `one ServiceRequest for order ${placer}`);
      return bundle.entry[0].resource;
    };
    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      const port = (await s.tessera.startMllp()) as number;
      await addParticipant(s.tessera.repo, { name: 'North Clinic', mrnSystem: 'urn:example:north-clinic:mrn', hl7Facility: 'NORTHCLINIC' });
      await addParticipant(s.tessera.repo, { name: 'Acme Reference Lab', mrnSystem: 'urn:example:acme-lab:mrn', hl7Facility: 'ACMELAB' });
      clinic = new MllpSender(port);
    });
    after(async () => {
      await clinic?.close();
      await s?.close();
    });

    it('ORM^O01 new order: a ServiceRequest with code, requester, performer, priority, reason and occurrence', async () => {
      const ack = await clinic.send(orm('O-1', 'NW', 'PL-1001'));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      const request = await requestFor('PL-1001');
      assert.equal(request.status, 'active');
      assert.equal(request.intent, 'order');
      assert.equal(request.code.coding[0].code, '24317-0');
      assert.equal(request.requester.display, 'DR MARCUS WELBY');
      assert.equal(request.performer[0].display, 'ACMELAB');
      assert.equal(request.priority, 'stat');
      assert.equal(request.reasonCode[0].coding[0].code, 'R53.83');
      assert.equal(request.occurrenceDateTime, '2026-12-02T08:00:00Z');
      assert.equal(request.authoredOn, '2026-12-01T09:29:00Z');
      assert.match(request.subject.reference, /^Patient\//);
      const provenance = (await s.fhir('GET', `Provenance?target=ServiceRequest/${request.id}`)).body.entry;
      assert.equal(provenance.length, 1, 'attributed to the message and the clinic like results');
    });

    it('hold, release, status change and cancel (ORC-1, ORC-5) move the same ServiceRequest', async () => {
      const steps: [string, string, string | undefined, string][] = [
        ['O-2', 'HD', undefined, 'on-hold'],
        ['O-3', 'RL', undefined, 'active'],
        ['O-4', 'SC', 'IP', 'active'],
        ['O-5', 'CA', undefined, 'revoked'],
      ];
      for (const [control, orc1, orc5, status] of steps) {
        const ack = await clinic.send(orm(control, orc1, 'PL-1002', { orderStatus: orc5 }));
        assert.equal(ack.code, 'AA', `${orc1}: ${ack.errors.join('; ')}`);
        assert.equal((await requestFor('PL-1002')).status, status, `ORC-1 ${orc1}`);
      }
      const history = (await s.fhir('GET', `ServiceRequest/${(await requestFor('PL-1002')).id}/_history`)).body;
      assert.equal(history.total, 4);
    });

    it('OML^O21 with TQ1 and SPM: priority and period from TQ1, the specimen as a Specimen', async () => {
      const oml = [
        'MSH|^~\\&|EHR|NORTHCLINIC|LIS|ACMELAB|20261201100000||OML^O21^OML_O21|O-6|P|2.5.1',
        PID,
        'ORC|NW|PL-1003^NORTHEHR|||||||20261201095900|||1234567890^WELBY^MARCUS^^^DR',
        'TQ1|1||||||20261203070000|20261203090000|R',
        'OBR|1|PL-1003^NORTHEHR||2345-7^Glucose [Mass/volume] in Serum or Plasma^LN',
        'NTE|1||Fasting since midnight',
        'SPM|1|SP-77||119364003^Serum specimen^SCT|||||||||||||20261203071500',
      ].join('\r');
      const ack = await clinic.send(oml);
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      const request = await requestFor('PL-1003');
      assert.equal(request.priority, 'routine');
      assert.deepEqual(request.occurrencePeriod, { start: '2026-12-03T07:00:00Z', end: '2026-12-03T09:00:00Z' });
      assert.equal(request.note[0].text, 'Fasting since midnight');
      const specimen = (await s.fhir('GET', request.specimen[0].reference)).body;
      assert.equal(specimen.type.coding[0].code, '119364003');
      assert.equal(specimen.collection.collectedDateTime, '2026-12-03T07:15:00Z');
    });

    it('a later result from another sender (the lab) for the same placer number is linked to the order and completes it', async () => {
      const oru = [
        'MSH|^~\\&|LIS|ACMELAB|EHR|NORTHCLINIC|20261203120000||ORU^R01|R-1|P|2.5.1',
        'PID|1||ACME-9001^^^ACMELAB^MR||Ortega^Lucia^M||19810412|F',
        'ORC|RE|PL-1003^NORTHEHR|F-55001^ACMELAB',
        'OBR|1|PL-1003^NORTHEHR|F-55001^ACMELAB|2345-7^Glucose [Mass/volume] in Serum or Plasma^LN|||20261203071500|||||||||||||||20261203115000|||F',
        'OBX|1|NM|2345-7^Glucose [Mass/volume] in Serum or Plasma^LN||92|mg/dL^^UCUM|70-99||||F',
      ].join('\r');
      const ack = await clinic.send(oru); // attributed by MSH-4 to the lab, whatever the connection
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      const request = await requestFor('PL-1003');
      assert.equal(request.status, 'completed');
      assert.ok(request.identifier.some((i: any) => i.value === 'F-55001' && i.type.coding[0].code === 'FILL'), 'the filler number is added');
      assert.equal(request.code.coding[0].code, '2345-7', 'the order as the clinic placed it is kept');
      const report = (await s.fhir('GET', 'DiagnosticReport?code=http://loinc.org|2345-7')).body.entry[0].resource;
      assert.equal(report.basedOn[0].reference, `ServiceRequest/${request.id}`);
      assert.equal(await (await s.fhir('GET', 'ServiceRequest?_summary=count')).body.total, 3, 'no second ServiceRequest for the order');
    });

    it('an order without a placer or filler number gets AE with the reason, and nothing is stored', async () => {
      const before = (await s.fhir('GET', 'ServiceRequest?_summary=count')).body.total;
      const ack = await clinic.send(orm('O-7', 'NW', '').replace('|^NORTHEHR|', '||'));
      assert.equal(ack.code, 'AE');
      assert.match(ack.errors.join('; '), /no placer or filler order number/);
      assert.equal((await s.fhir('GET', 'ServiceRequest?_summary=count')).body.total, before);
    });

    it('an ACK sent to the exchange gets AR and is logged as ignored, not queued as an error', async () => {
      const ack = await clinic.send('MSH|^~\\&|EHR|NORTHCLINIC|HIE|TESSERA|20261201100500||ACK^O01^ACK|A-1|P|2.5.1\rMSA|AA|X-99');
      assert.equal(ack.code, 'AR');
      assert.match(ack.errors.join('; '), /acknowledgement \(ACK\) is not a message to the exchange/);
      const rows = await s.tessera.db.query<{ status: string }>("SELECT status FROM message WHERE control_id = 'A-1'");
      assert.deepEqual(rows.map((r) => r.status), ['ignored']);
      const queue = await s.tessera.db.query<{ control_id: string }>("SELECT control_id FROM message WHERE status = 'failed'");
      assert.ok(!queue.some((m) => m.control_id === 'A-1'));
    });

    it('OML^O21 status change and cancel move the same ServiceRequest; OMG^O19 (clinical) and OMI^O23 (imaging) orders map as ORM does', async () => {
      const omlOrder = (control: string, orc1: string, orc5 = '') =>
        [
          `MSH|^~\\&|EHR|NORTHCLINIC|LIS|ACMELAB|20261204100000||OML^O21^OML_O21|${control}|P|2.5.1`,
          PID,
          `ORC|${orc1}|PL-2001^NORTHEHR|||${orc5}||||20261204095900|||1234567890^WELBY^MARCUS^^^DR`,
          'OBR|1|PL-2001^NORTHEHR||4548-4^Hemoglobin A1c/Hemoglobin.total in Blood^LN',
        ].join('\r');
      for (const [control, orc1, orc5, status] of [['L-1', 'NW', '', 'active'], ['L-2', 'SC', 'IP', 'active'], ['L-3', 'CA', '', 'revoked']]) {
        const ack = await clinic.send(omlOrder(control, orc1, orc5));
        assert.equal(ack.code, 'AA', `${orc1}: ${ack.errors.join('; ')}`);
        assert.equal((await requestFor('PL-2001')).status, status, `OML ORC-1 ${orc1}`);
      }
      assert.equal((await s.fhir('GET', `ServiceRequest/${(await requestFor('PL-2001')).id}/_history`)).body.total, 2, 'one ServiceRequest: new, then cancelled (in process, IP, is the active it already was)');

      const omg = [
        'MSH|^~\\&|EHR|NORTHCLINIC|CARDIO|NORTHCLINIC|20261204101000||OMG^O19^OMG_O19|G-1|P|2.5.1',
        PID,
        'ORC|NW|PL-2002^NORTHEHR|||||||20261204100900|||1234567890^WELBY^MARCUS^^^DR',
        'OBR|1|PL-2002^NORTHEHR||93000^Electrocardiogram, routine, with interpretation^C4|||20261204100900||||||||||||||||||||^^^20261205090000^^R',
      ].join('\r');
      const omi = [
        'MSH|^~\\&|EHR|NORTHCLINIC|RIS|NORTHCLINIC|20261204102000||OMI^O23^OMI_O23|I-1|P|2.5.1',
        PID,
        'ORC|NW|PL-2003^NORTHEHR|||||||20261204101900|||1234567890^WELBY^MARCUS^^^DR',
        'OBR|1|PL-2003^NORTHEHR||36643-5^XR Chest 2 Views^LN|||20261204101900||||||||||||||||||||^^^20261205100000^^R',
        'IPC|ACC-3001^RIS|SPS-1^RIS|1.2.840.113619.2.55.3.2831164.1|SPS-1^RIS|DX',
      ].join('\r');
      for (const [message, placer, code] of [[omg, 'PL-2002', '93000'], [omi, 'PL-2003', '36643-5']]) {
        const ack = await clinic.send(message);
        assert.equal(ack.code, 'AA', ack.errors.join('; '));
        const request = await requestFor(placer);
        assert.deepEqual([request.status, request.intent, request.code.coding[0].code, request.priority], ['active', 'order', code, 'routine']);
        assert.equal(request.requester.display, 'DR MARCUS WELBY');
      }
    });
  });
}
