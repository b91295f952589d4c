import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender, sendRawFrame } from './helpers/mllp.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** Messages in the styles of three EHR families (MSH/PID habits, versions, line endings), all synthetic. */
const epicAdmit = (control: string) =>
  [
    `MSH|^~\\&|EPIC|NORTHGATE^1.2.840.114350.1.13.99.2^ISO|HIE|TESSERA|20261101083000-0500||ADT^A01^ADT_A01|${control}|P|2.5.1|||AL|NE`,
    'EVN|A01|20261101082900-0500',
    'PID|1||E100234^^^NORTHGATE^MR~999-12-3456^^^USSSA^SS||O\'Brien-Smith^Mary^Ann^^Dr.^^L~Smith^Mary^^^^^M||19740312|F|||12 Harbour St^Apt 4\\T\\5^Boston^MA^02110^USA^H||^PRN^PH^^1^617^5550134~^NET^Internet^mary@example.org|^WPN^PH^^1^617^5550199||M|||||||||||N',
    'PV1|1|I|4E^412^B^NORTHGATE||||1234^Carter^Ann^^^Dr.|||MED||||7|||1234^Carter^Ann^^^Dr.||V7781^^^NORTHGATE^VN|||||||||||||||||||||||||20261101082500-0500',
    'DG1|1||I21.4^Non-ST elevation myocardial infarction^I10|||A',
    'ZPD|1|custom epic field|\\H\\bold\\N\\',
  ].join('\r');

const cernerLabs = (control: string, status: string, value: string) =>
  [
    `MSH|^~\\&|CERNER|LAKESIDE|HIE|TESSERA|20261102101500||ORU^R01|${control}|P|2.3`,
    'PID|1|C55512^^^LAKESIDE|C55512^^^LAKESIDE^MR||Nguyen^Thanh^^^^^L||19880101|M',
    'OBR|1|PL-881|FL-2231^LAB|24323-8^Comprehensive metabolic panel^LN|||20261102093000|||||||||||||||20261102101000|||' + status,
    `OBX|1|NM|2345-7^Glucose^LN||${value}|mg/dL^mg/dL^UCUM|70-99|H|||${status}|||20261102093000`,
    'NTE|1||Fasting sample',
    `OBX|2|NM|2160-0^Creatinine^LN||0.9|mg/dL|0.6-1.3|N|||${status}|||20261102093000`,
    `OBX|3|SN|33914-3^eGFR^LN||>^60|mL/min/{1.73_m2}^^UCUM|>59||||${status}`,
    `OBX|4|ST|8251-1^Comment^LN||Specimen slightly haemolysed||||||${status}`,
  ].join('\r');

const meditechImmunization = (control: string) =>
  [
    `MSH|^~\\&|MEDITECH|RIVERVIEW|HIE|TESSERA|20261103140000||VXU^V04^VXU_V04|${control}|P|2.4`,
    'PID|1||M-0042^^^RIVERVIEW^MR||Kowalski^Jan||20200615|M',
    'ORC|RE||IZ-77812^RIVERVIEW',
    'RXA|0|1|20261103133000||08^Hep B, adolescent or pediatric^CVX|0.5|mL^milliliter^UCUM||00^New immunization record^NIP001||||||LOT-7781|20271231|MSD^Merck^MVX|||CP|A',
    'RXR|IM^Intramuscular^HL70162|LT^Left Thigh^HL70163',
  ].join('\n'); // Meditech-style LF line endings

for (const backend of BACKENDS) {
  describe(`HL7 v2 intake over MLLP (${backend})`, () => {
    let s: TestServer;
    let port: number;
    let sender: MllpSender;
    let northgate: Participant;
    const count = async (type: string) => (await s.fhir('GET', `${type}?_summary=count`)).body.total as number;

    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      port = (await s.tessera.startMllp()) as number;
      northgate = (await addParticipant(s.tessera.repo, { name: 'Northgate Hospital', mrnSystem: 'urn:oid:1.2.840.114350.1.13.99.2.7.5.737384.14', hl7Facility: 'NORTHGATE' })).participant;
      await addParticipant(s.tessera.repo, { name: 'Lakeside Labs', mrnSystem: 'urn:example:lakeside:mrn', hl7Facility: 'LAKESIDE' });
      await addParticipant(s.tessera.repo, { name: 'Riverview Clinic', mrnSystem: 'urn:example:riverview:mrn', hl7Facility: 'RIVERVIEW', hl7Application: 'MEDITECH' });
      sender = new MllpSender(port);
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    it('an Epic-style admission: AA, the patient under the participant\'s MRN system, escapes decoded, the visit and its diagnosis', async () => {
      const ack = await sender.send(epicAdmit('EP-1001'));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      const found = await s.fhir('GET', `Patient?identifier=${encodeURIComponent(`${northgate.mrnSystem}|E100234`)}`);
      assert.equal(found.body.entry?.length, 1);
      const patient = found.body.entry[0].resource;
      assert.equal(patient.name[0].family, "O'Brien-Smith");
      assert.deepEqual(patient.name[0].given, ['Mary', 'Ann']);
      assert.equal(patient.name[1].use, 'maiden');
      assert.equal(patient.address[0].line[1], 'Apt 4&5', 'the \\T\\ escape is an ampersand');
      assert.ok(patient.identifier.some((i: any) => i.system === 'http://hl7.org/fhir/sid/us-ssn' && i.value === '999-12-3456'));
      assert.ok(patient.telecom.some((t: any) => t.system === 'email' && t.value === 'mary@example.org'));
      assert.equal(patient.meta.source.startsWith('urn:tessera:message:'), true);
      const encounter = (await s.fhir('GET', `Encounter?subject=Patient/${patient.id}`)).body.entry[0].resource;
      assert.equal(encounter.class.code, 'IMP');
      assert.equal(encounter.status, 'in-progress');
      assert.equal(encounter.period.start, '2026-11-01T08:25:00-05:00');
      assert.match(encounter.location[0].location.display, /4E 412 B/);
      const condition = (await s.fhir('GET', `Condition?subject=Patient/${patient.id}`)).body.entry[0].resource;
      assert.equal(condition.code.coding[0].system, 'http://hl7.org/fhir/sid/icd-10');
      assert.equal(encounter.diagnosis[0].condition.reference, `Condition/${condition.id}`);
      const provenance = await s.fhir('GET', `Provenance?target=Encounter/${encounter.id}`);
      assert.equal(provenance.body.entry[0].resource.agent[0].who.reference, `Organization/${northgate.organizationId}`);
    });

    it('a discharge (A03) for the same visit finishes the same Encounter', async () => {
      const discharge = epicAdmit('EP-1002').replace('ADT^A01^ADT_A01', 'ADT^A03^ADT_A03').replace('EVN|A01|20261101082900-0500', 'EVN|A03|20261104120000-0500');
      assert.equal((await sender.send(discharge)).code, 'AA');
      const encounters = await s.fhir('GET', `Encounter?identifier=${encodeURIComponent(`urn:tessera:participant:${northgate.id}:visit|V7781`)}`);
      assert.equal(encounters.body.entry.length, 1, 'one Encounter per visit number');
      assert.equal(encounters.body.entry[0].resource.status, 'finished');
      assert.equal(encounters.body.entry[0].resource.period.end, '2026-11-04T12:00:00-05:00');
      // The discharge updated the Encounter (version 2) and repeated the patient unchanged (version 1 kept):
      // its Provenance names both versions it wrote or confirmed, not only what it created.
      const encounter = encounters.body.entry[0].resource;
      assert.equal(encounter.meta.versionId, '2');
      const provenances = (await s.fhir('GET', `Provenance?target=Encounter/${encounter.id}`)).body.entry.map((e: any) => e.resource);
      const ofDischarge = provenances.filter((p: any) => p.target.some((t: any) => t.reference === `Encounter/${encounter.id}/_history/2`));
      assert.equal(ofDischarge.length, 1, 'the discharge has a Provenance naming the version it wrote');
      const targets = ofDischarge[0].target.map((t: any) => t.reference);
      assert.ok(targets.includes(`${encounter.subject.reference}/_history/1`), `the unchanged patient: ${targets.join(', ')}`);
    });

    it('a retransmission (same control id, same text) is acknowledged and not applied twice', async () => {
      const before = { patients: await count('Patient'), provenance: await count('Provenance') };
      const ack = await sender.send(epicAdmit('EP-1001'));
      assert.equal(ack.code, 'AA');
      assert.deepEqual({ patients: await count('Patient'), provenance: await count('Provenance') }, before);
      const [row] = await s.tessera.db.query<{ status: string; error: string }>("SELECT status, error FROM message WHERE control_id = 'EP-1001' ORDER BY id DESC LIMIT 1");
      assert.equal(row.status, 'duplicate');
      assert.match(row.error, /retransmission of message/);
    });

    it('Cerner-style results: LOINC codes, UCUM units, ranges, flags, notes; a corrected result replaces the preliminary one', async () => {
      assert.equal((await sender.send(cernerLabs('CR-1', 'P', '182'))).code, 'AA');
      const glucose = async () => (await s.fhir('GET', 'Observation?code=http://loinc.org|2345-7')).body.entry;
      const [preliminary] = await glucose();
      assert.equal(preliminary.resource.status, 'preliminary');
      assert.deepEqual(preliminary.resource.valueQuantity, { value: 182, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' });
      assert.equal(preliminary.resource.referenceRange[0].high.value, 99);
      assert.equal(preliminary.resource.interpretation[0].coding[0].code, 'H');
      assert.equal(preliminary.resource.note[0].text, 'Fasting sample');
      const egfr = (await s.fhir('GET', 'Observation?code=http://loinc.org|33914-3')).body.entry[0].resource;
      assert.equal(egfr.valueQuantity.comparator, '>');
      assert.equal(egfr.valueQuantity.code, 'mL/min/{1.73_m2}');

      assert.equal((await sender.send(cernerLabs('CR-2', 'C', '118'))).code, 'AA');
      const after = await glucose();
      assert.equal(after.length, 1, 'the corrected result updates the same Observation');
      assert.equal(after[0].resource.status, 'corrected');
      assert.equal(after[0].resource.valueQuantity.value, 118);
      assert.equal(after[0].resource.meta.versionId, '2');
      const report = (await s.fhir('GET', 'DiagnosticReport?code=http://loinc.org|24323-8')).body.entry;
      assert.equal(report.length, 1);
      assert.equal(report[0].resource.status, 'corrected');
      assert.equal(report[0].resource.result.length, 4);
    });

    it('Meditech-style immunization (v2.4, LF line endings): CVX vaccine, lot, dose, route and site', async () => {
      const ack = await sender.send(meditechImmunization('MT-1'));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      const imm = (await s.fhir('GET', 'Immunization?vaccine-code=http://hl7.org/fhir/sid/cvx|08')).body.entry[0].resource;
      assert.equal(imm.status, 'completed');
      assert.equal(imm.lotNumber, 'LOT-7781');
      assert.deepEqual(imm.doseQuantity, { value: 0.5, unit: 'milliliter', system: 'http://unitsofmeasure.org', code: 'mL' });
      assert.equal(imm.route.coding[0].code, 'IM');
      assert.equal(imm.occurrenceDateTime, '2026-11-03T13:30:00Z');
    });

    it('several connections at once (applied in shared transactions): each keeps its order, a bad message fails alone', async () => {
      const update = (conn: number, step: number) =>
        `MSH|^~\\&|EPIC|NORTHGATE|HIE|TESSERA|2026111${step}||ADT^A08|PAR-${conn}-${step}|P|2.5.1\rPID|1||PAR-${conn}^^^NORTHGATE^MR||Parallel${conn}^Step${step}||19700101|F`;
      const senders = Array.from({ length: 6 }, () => new MllpSender(port));
      try {
        const codes = await Promise.all(
          senders.map(async (client, conn) => {
            const out: string[] = [];
            for (let step = 0; step < 5; step++) {
              const text = conn === 2 && step === 2 ? update(conn, step).replace(/PID\|1\|\|[^|]*\|/, 'PID|1|||') : update(conn, step);
              out.push((await client.send(text)).code);
            }
            return out;
          }),
        );
        codes.forEach((c, conn) => assert.deepEqual(c, conn === 2 ? ['AA', 'AA', 'AE', 'AA', 'AA'] : ['AA', 'AA', 'AA', 'AA', 'AA'], `connection ${conn}`));
        for (let conn = 0; conn < 6; conn++) {
          const found = (await s.fhir('GET', `Patient?identifier=${encodeURIComponent(`${northgate.mrnSystem}|PAR-${conn}`)}`)).body.entry;
          assert.equal(found.length, 1);
          assert.equal(found[0].resource.name[0].given[0], 'Step4', `connection ${conn}: the last message sent is the state stored`);
        }
      } finally {
        await Promise.all(senders.map((c) => c.close()));
      }
    });

    it('a message it cannot map gets AE with the reason, and nothing of it is stored', async () => {
      const before = { patients: await count('Patient'), encounters: await count('Encounter') };
      const noMrn = epicAdmit('EP-2001').replace(/PID\|1\|\|[^|]*\|/, 'PID|1|||');
      const ack = await sender.send(noMrn);
      assert.equal(ack.code, 'AE');
      assert.match(ack.errors[0], /PID-3 .* no record number/);
      assert.deepEqual({ patients: await count('Patient'), encounters: await count('Encounter') }, before);
      const [row] = await s.tessera.db.query<{ status: string }>("SELECT status FROM message WHERE control_id = 'EP-2001'");
      assert.equal(row.status, 'failed', 'kept in the error queue');
    });

    it('a malformed message gets AR, is logged raw, and changes nothing', async () => {
      const before = await count('Patient');
      const ack = await sendRawFrame(port, 'this is not HL7\rPID|1||X');
      assert.match(ack, /MSA\|AR/);
      assert.match(ack, /must start with an MSH segment/);
      const broken = await sendRawFrame(port, 'MSH|^~\\&|EPIC|NORTHGATE|||20261101||ADT^A01|EP-3001|P|2.5.1\rP!D|garbage');
      assert.match(broken, /MSA\|AR\|EP-3001/, 'the control id is echoed when it can be read');
      assert.equal(await count('Patient'), before);
      const rows = await s.tessera.db.query<{ raw: string }>("SELECT raw FROM message WHERE status = 'failed' AND raw LIKE 'this is not HL7%'");
      assert.equal(rows.length, 1, 'even an unreadable message is in the log');
    });

    it('refuses a sender no participant is registered for (AR), and an unsupported type (AR 200)', async () => {
      const unknown = await sender.send(epicAdmit('X-1').replace('|NORTHGATE^1.2.840.114350.1.13.99.2^ISO|', '|STRANGER|'));
      assert.equal(unknown.code, 'AR');
      assert.match(unknown.errors[0], /Unknown sender.*STRANGER/);
      const siu = await sender.send(`MSH|^~\\&|EPIC|NORTHGATE|HIE|TESSERA|20261101||SIU^S12|EP-4001|P|2.5.1\rSCH|1`);
      assert.equal(siu.code, 'AR');
      assert.match(siu.raw, /ERR\|\|[^|]*\|200\^Unsupported message type/);
    });

    it('an A40 from a sender links its retired record into the survivor\'s enterprise identity', async () => {
      // A duplicate registration under a maiden name: too different for the index to link on its own.
      const admit = (control: string, mrn: string, name: string) =>
        `MSH|^~\\&|EPIC|NORTHGATE|HIE|TESSERA|20261101||ADT^A04|${control}|P|2.5.1\rPID|1||${mrn}^^^NORTHGATE^MR||${name}||19610203|F`;
      assert.equal((await sender.send(admit('EP-5001', 'E-OLD-1', 'Hartwell^Rosalind'))).code, 'AA');
      assert.equal((await sender.send(admit('EP-5002', 'E-NEW-1', 'Quillfeather^Rosalyn'))).code, 'AA');
      const golden = async (id: string) => {
        const found = (await s.fhir('GET', `Patient?link=Patient/${id}&_tag=https://tessera.dev/fhir/CodeSystem/mpi|golden`)).body.entry;
        assert.equal(found.length, 1, JSON.stringify(found.map((e: any) => e.resource)));
        return found[0].resource.id;
      };
      const byMrn = async (mrn: string) => (await s.fhir('GET', `Patient?identifier=${encodeURIComponent(`${northgate.mrnSystem}|${mrn}`)}`)).body.entry[0].resource;
      assert.notEqual(await golden((await byMrn('E-OLD-1')).id), await golden((await byMrn('E-NEW-1')).id), 'two identities before the merge');
      const merge = `MSH|^~\\&|EPIC|NORTHGATE|HIE|TESSERA|20261102||ADT^A40|EP-5003|P|2.5.1\rEVN|A40\rPID|1||E-NEW-1^^^NORTHGATE^MR||Quillfeather^Rosalyn||19610203|F\rMRG|E-OLD-1^^^NORTHGATE^MR`;
      const ack = await sender.send(merge);
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      const [retired, survivor] = [await byMrn('E-OLD-1'), await byMrn('E-NEW-1')];
      assert.equal(retired.active, false);
      assert.deepEqual(retired.link, [{ other: { reference: `Patient/${survivor.id}` }, type: 'replaced-by' }]);
      assert.equal(await golden(retired.id), await golden(survivor.id), 'one enterprise identity');
      const person = (await s.fhir('GET', `Patient/${await golden(survivor.id)}`)).body;
      assert.equal(person.name[0].given[0], 'Rosalyn', 'the golden record takes its demographics from the active record, not the retired one');
      const events = await s.fhir('GET', 'Patient/$mpi-events?action=linked');
      assert.ok(events.body.parameter.some((p: any) => JSON.stringify(p).includes('A40 merge from Northgate Hospital')));
    });
  });
}
