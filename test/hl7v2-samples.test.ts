import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { V2Message } from '../src/hl7v2/message-reader.js';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender, type Ack } from './helpers/mllp.js';
import { FIXTURES } from './helpers/paths.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** All 139 sample messages of microsoft/FHIR-Converter (MIT), kept in test/fixtures/hl7v2-samples (see its README). */
const SAMPLES = join(FIXTURES, 'hl7v2-samples');
const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.hl7')).sort();

/** Message types Tessera does not map: rejected (AR, HL7 error 200/201) and kept in the error queue for replay once they are. */
const UNSUPPORTED: Record<string, string[]> = {
  'ADT^A29': ['ADT-A29-01', 'ADT-A29-02'], // delete person information: deleting shared records is a steward's decision
  'ADT^A41': ['ADT-A41-01', 'ADT-A41-02'], // merge account: accounts are not modelled
  'ADT^A45': ['ADT-A45-01', 'ADT-A45-02'], // move visit
  'ADT^A47': ['ADT-A47-01', 'ADT-A47-02'], // change patient identifier list
  'ADT^A60': ['ADT-A60-01', 'ADT-A60-02', 'SIU_12'], // update allergy information (SIU_12 is an A60 despite its name)
  'BAR^P01': ['BAR-P01-01', 'BAR-P01-02'],
  'BAR^P02': ['BAR-P02-01', 'BAR-P02-02'],
  'BAR^P12': ['BAR-P12-01', 'BAR-P12-02'],
  'DFT^P03': ['DFT-P03-01', 'DFT-P03-02'],
  'DFT^P11': ['DFT-P11-01', 'DFT-P11-02'],
  'OUL^R22': ['OUL-R22-01', 'OUL-R22-02'],
  'OUL^R23': ['OUL-R23-01', 'OUL-R23-02'],
  'OUL^R24': ['OUL-R24-01', 'OUL-R24-02'],
  'RDE^O11': ['RDE-O11-01', 'RDE-O11-02'],
  'RDE^O25': ['RDE-O25-01', 'RDE-O25-02'],
  'RDS^O13': ['RDS-O13-01', 'RDS-O13-02'],
  'REF^I12': ['REF-I12-01', 'REF-I12-02'],
  'REF^I14': ['REF-I14-01', 'REF-I14-02'],
  'SIU^S12': ['SIU-S12-01', 'SIU-S12-02', 'SIU-S12_1'],
  'SIU^S13': ['SIU-S13-01', 'SIU-S13-02'],
  'SIU^S14': ['SIU-S14-01', 'SIU-S14-02'],
  'SIU^S15': ['SIU-S15-01', 'SIU-S15-02'],
  'SIU^S16': ['SIU-S16-01', 'SIU-S16-02'],
  'SIU^S17': ['SIU-S17-01', 'SIU-S17-02'],
  'SIU^S26': ['SIU-S26-01', 'SIU-S26-02'],
};
/** Order samples that name no placer or filler order number (ORC-2/3, OBR-2/3): nothing to match a change or a result to (AE). */
const NO_ORDER_NUMBER = ['OMG-O19-01', 'OMG-O19-02', 'OML-O21-03'];
/** Neither MSH-3 nor MSH-4 names a sender: refused as from an unknown sender. */
const NO_SENDER = ['PC1-Problem-Add-v2.3.1', 'PC1-Problem-Delete-v2.3.1', 'PC1-Problem-Update-v2.3.1'];

function expected(file: string): { code: string; reason?: RegExp } {
  const name = file.replace(/\.hl7$/, '');
  const type = Object.entries(UNSUPPORTED).find(([, names]) => names.includes(name))?.[0];
  if (type) return { code: 'AR', reason: new RegExp(`message type ${type.replace('^', '\\^')} is not supported`) };
  if (NO_ORDER_NUMBER.includes(name)) return { code: 'AE', reason: /no placer or filler order number/ };
  if (NO_SENDER.includes(name)) return { code: 'AR', reason: /Unknown sender/ };
  return { code: 'AA' };
}

for (const backend of BACKENDS) {
  describe(`HL7 v2 samples over MLLP (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    const acks = new Map<string, Ack>();
    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      const port = (await s.tessera.startMllp()) as number;
      // One participant per sender the samples name (MSH-4, else MSH-3), as an operator registers them.
      const senders = new Map<string, { facility?: string; application?: string }>();
      for (const file of files) {
        try {
          const m = V2Message.parse(readFileSync(join(SAMPLES, file), 'utf8'));
          if (m.sendingFacility) senders.set(`f:${m.sendingFacility}`, { facility: m.sendingFacility });
          else if (m.sendingApplication) senders.set(`a:${m.sendingApplication}`, { application: m.sendingApplication });
        } catch {
          // a sample that does not parse is asserted on below
        }
      }
      let n = 0;
      for (const { facility, application } of senders.values()) {
        n++;
        await addParticipant(s.tessera.repo, { name: `Sample sender ${n}`, mrnSystem: `urn:example:sample-sender-${n}:mrn`, hl7Facility: facility, hl7Application: application });
      }
      sender = new MllpSender(port);
      for (const file of files) {
        acks.set(file, await sender.send(readFileSync(join(SAMPLES, file), 'utf8')));
      }
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    it(`acknowledges all ${files.length} sample messages: AA, or AR naming the reason for that file`, () => {
      assert.equal(files.length, 139);
      const wrong = files.flatMap((file) => {
        const ack = acks.get(file) as Ack;
        const want = expected(file);
        return ack.code !== want.code || (want.reason && !want.reason.test(ack.errors.join('; '))) ? [`${file}: ${ack.code} ${ack.errors.join('; ')} (expected ${want.code})`] : [];
      });
      assert.deepEqual(wrong, []);
    });

    it('logs every message with its status, and counts the resources each supported type produced', async () => {
      const rows = await s.tessera.db.query<{ message_type: string; status: string; resources: string | null }>('SELECT message_type, status, resources FROM message');
      assert.equal(rows.length, files.length, 'every message is in the log');
      const produced = new Map<string, Map<string, number>>();
      for (const row of rows.filter((r) => r.status === 'processed')) {
        const perType = produced.get(row.message_type) ?? new Map<string, number>();
        for (const ref of JSON.parse(row.resources ?? '[]') as string[]) {
          const type = ref.split('/')[0];
          perType.set(type, (perType.get(type) ?? 0) + 1);
        }
        produced.set(row.message_type, perType);
      }
      const count = (messageType: string, resourceType: string) => produced.get(messageType)?.get(resourceType) ?? 0;
      // The first admission creates the patient, the visit and its diagnosis; ORU results and VXU doses are mapped one for one.
      assert.ok(count('ADT^A01', 'Patient') >= 1 && count('ADT^A01', 'Encounter') >= 1 && count('ADT^A01', 'Condition') >= 1, JSON.stringify([...(produced.get('ADT^A01') ?? [])]));
      assert.ok(count('ORU^R01', 'Observation') >= 30 && count('ORU^R01', 'DiagnosticReport') >= 3, JSON.stringify([...(produced.get('ORU^R01') ?? [])]));
      // Orders: one ServiceRequest per ORC; results link to the ServiceRequest of their order number.
      assert.ok(count('ORM^O01', 'ServiceRequest') >= 7 && count('OML^O21', 'ServiceRequest') >= 2, JSON.stringify([...(produced.get('ORM^O01') ?? []), ...(produced.get('OML^O21') ?? [])]));
      assert.ok(count('VXU^V04', 'Immunization') >= 4, JSON.stringify([...(produced.get('VXU^V04') ?? [])]));
      // The MDM samples are notifications about one document (one TXA-12): the first creates it, the rest update it.
      assert.ok(count('MDM^T01', 'DocumentReference') >= 1, JSON.stringify([...(produced.get('MDM^T01') ?? [])]));
      for (const [type, perType] of produced) {
        if (perType.size) assert.ok(perType.get('Provenance'), `${type}: a Provenance for what it wrote`);
      }
      const failed = rows.filter((r) => r.status === 'failed').length;
      assert.equal(failed, files.filter((f) => expected(f).code !== 'AA').length, 'the error queue holds exactly the rejected messages');
    });

    it('the resources read back through the FHIR API with their provenance', async () => {
      const reports = await s.fhir('GET', 'DiagnosticReport?_count=100');
      assert.ok(reports.body.entry?.length >= 3);
      const observations = await s.fhir('GET', 'Observation?code=http://loinc.org|26464-8');
      assert.ok(observations.body.entry?.length >= 1, 'LOINC-coded results are searchable by code');
      const withUcum = await s.fhir('GET', 'Observation?_count=200');
      assert.ok(
        withUcum.body.entry.some((e: any) => e.resource.valueQuantity?.system === 'http://unitsofmeasure.org'),
        'numeric results carry UCUM units where the sender gave one',
      );
      const provenance = await s.fhir('GET', 'Provenance?_count=200');
      assert.ok(provenance.body.entry.every((e: any) => e.resource.entity?.[0]?.what?.identifier?.system === 'urn:tessera:message'));
      assert.ok(provenance.body.entry.every((e: any) => e.resource.agent?.[0]?.who?.reference?.startsWith('Organization/')));
    });
  });
}
