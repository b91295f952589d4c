import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender, readAck, sendRawFrame } from './helpers/mllp.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { Hl7Message } from '@medplum/core';

/**
 * Sender style: a state public-health laboratory's newborn-screening report, shaped like the MDHHS
 * newborn-screening ORU^R01 feeds (v2.5.1, ELR-style): one order (one filler number, NBS-2026-0042)
 * reported as 13 panels, each OBR with its own OBR-4 and the same two kinds of result (an analyte and a
 * panel interpretation with the same OBX-3 in every panel). The lab sends it preliminary, then final,
 * then corrects one value. Values and codes are made up in the shape of that feed (LOINC-coded panels).
 */
const PANELS = ['57128-1', '57717-1', '58088-6', '57085-3', '57086-1', '54078-1', '57087-9', '54076-5', '54090-6', '57084-6', '54077-3', '57700-7', '57721-3'];
const PID = 'PID|1||NB-88214^^^MILAB^MR||Shine^Baby Girl^^^^^L|Honey|20261101150405-0500|F';

function nbs(control: string, obrStatus: string, obx: (panel: number) => { status: string; value: string }): string {
  const lines = [`MSH|^~\\&|NBSLIMS|MI-NBS-LAB|HIE|TESSERA|20261103120000-0500||ORU^R01^ORU_R01|${control}|P|2.5.1`, PID, 'ORC|RE|ORD-552^^2.16.840.1.113883.3.72.5.24^ISO|NBS-2026-0042^MI-NBS-LAB'];
  PANELS.forEach((code, i) => {
    const { status, value } = obx(i);
    lines.push(
      `OBR|${i + 1}|ORD-552^^2.16.840.1.113883.3.72.5.24^ISO|NBS-2026-0042^MI-NBS-LAB|${code}^Newborn screening panel ${i + 1}^LN|||20261102080000-0500|||||||||||||||20261103115900-0500|||${obrStatus}`,
      `OBX|1|NM|${53000 + i}-1^Analyte ${i + 1}^LN||${value}|umol/L^^UCUM|0-100||||${status}|||20261102080000-0500`,
      `OBX|2|CWE|57718-9^Interpretation^LN||LA6576-8^Normal^LN||||||${status}|||20261102080000-0500`,
    );
  });
  return lines.join('\r');
}

for (const backend of BACKENDS) {
  describe(`HL7 v2 report and result identity (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    let port: number;
    const count = async (query: string) => (await s.fhir('GET', `${query}${query.includes('?') ? '&' : '?'}_summary=count`)).body.total as number;
    const analyte = async (panel: number) => (await s.fhir('GET', `Observation?code=http://loinc.org|${53000 + panel}-1`)).body.entry.map((e: any) => e.resource);
    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      port = (await s.tessera.startMllp()) as number;
      await addParticipant(s.tessera.repo, { name: 'Michigan Newborn Screening Lab', mrnSystem: 'urn:example:mi-nbs:mrn', hl7Facility: 'MI-NBS-LAB' });
      sender = new MllpSender(port);
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    it('one order number across 13 panels: each panel one DiagnosticReport, each result one Observation, one ServiceRequest', async () => {
      const ack = await sender.send(nbs('NBS-1', 'P', () => ({ status: 'P', value: '40' })));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      assert.equal(await count('DiagnosticReport'), 13);
      assert.equal(await count('Observation'), 26, 'the interpretation (same OBX-3 in every panel) is one result per panel');
      assert.equal(await count('ServiceRequest'), 1);
      const [request] = (await s.fhir('GET', 'ServiceRequest')).body.entry.map((e: any) => e.resource);
      assert.equal(request.status, 'active', 'preliminary results: the order is in progress');
      const reports = (await s.fhir('GET', 'DiagnosticReport?_count=20')).body.entry.map((e: any) => e.resource);
      assert.ok(reports.every((r: any) => r.basedOn?.[0]?.reference === `ServiceRequest/${request.id}` && r.status === 'preliminary'));
      assert.equal(new Set(reports.map((r: any) => r.identifier[0].value)).size, 13);
    });

    it('the final after the preliminary updates the same records (new versions), and completes the order', async () => {
      const ack = await sender.send(nbs('NBS-2', 'F', (i) => ({ status: 'F', value: i === 3 ? '59' : '40' })));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      assert.deepEqual(ack.errors, [], 'a final after a preliminary is no unannounced change');
      assert.equal(await count('DiagnosticReport'), 13);
      assert.equal(await count('Observation'), 26);
      assert.equal(await count('DiagnosticReport?status=final'), 13);
      const [result] = await analyte(3);
      assert.equal(result.status, 'final');
      assert.equal(result.valueQuantity.value, 59);
      assert.equal((await s.fhir('GET', 'ServiceRequest')).body.entry[0].resource.status, 'completed');
    });

    it('a corrected result (OBX-11 C) is a new version of the same Observation; the history keeps both', async () => {
      const ack = await sender.send(nbs('NBS-3', 'C', (i) => (i === 3 ? { status: 'C', value: '62' } : { status: 'F', value: '40' })));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      assert.deepEqual(ack.errors, []);
      assert.equal(await count('Observation'), 26);
      const [result] = await analyte(3);
      assert.equal(result.status, 'corrected');
      assert.equal(result.valueQuantity.value, 62);
      const history = (await s.fhir('GET', `Observation/${result.id}/_history`)).body.entry.map((e: any) => e.resource.valueQuantity.value);
      assert.deepEqual(history, [62, 59, 40]);
    });

    it('a final replaced by another value without C is applied as a new version, with a warning on the ACK and in the log', async () => {
      const ack = await sender.send(nbs('NBS-4', 'F', (i) => ({ status: 'F', value: i === 3 ? '64' : '40' })));
      assert.equal(ack.code, 'AA');
      assert.equal(ack.errors.length, 1, ack.errors.join('; '));
      assert.match(ack.errors[0], /final value 62 umol\/L is replaced by 64 umol\/L without a correction status/);
      const [result] = await analyte(3);
      assert.equal(result.valueQuantity.value, 64);
      const logged = await s.tessera.db.query<{ warnings: string }>("SELECT warnings FROM message WHERE control_id = 'NBS-4'");
      assert.match(logged[0].warnings, /without a correction status/);
    });

    it('a frame cut inside its last OBX (59 sent as 5) gets AE with the reason, and nothing is stored', async () => {
      const whole = nbs('NBS-5', 'F', (i) => ({ status: 'F', value: i === 3 ? '59' : '40' }));
      const cut = whole.slice(0, whole.indexOf('|59|') + 3); // the sender's buffer flushed after "5"
      const ack = readAck(Hl7Message.parse(await sendRawFrame(port, cut)));
      assert.equal(ack.code, 'AE');
      assert.match(ack.errors.join('; '), /looks truncated.*OBX-11/);
      const [result] = await analyte(3);
      assert.equal(result.valueQuantity.value, 64, 'the stored result is untouched');
      assert.equal(await count('Observation'), 26);
    });

    it('table 0085 O (order detail, no result) and table 0123 codes map without "unknown status" warnings', async () => {
      const message = [
        'MSH|^~\\&|NBSLIMS|MI-NBS-LAB|HIE|TESSERA|20261104120000-0500||ORU^R01^ORU_R01|NBS-6|P|2.5.1',
        PID,
        'OBR|1|ORD-553|NBS-2026-0043^MI-NBS-LAB|54089-8^Newborn screening panel^LN|||20261104080000-0500|||||||||||||||20261104115900-0500|||I',
        'OBX|1|CWE|57716-3^State newborn screen panel^LN||LA12430-7^Specimen received^LN||||||O',
        'OBX|2|ST|57721-3^Reason for lab test^LN||Routine||||||N',
      ].join('\r');
      const ack = await sender.send(message);
      assert.equal(ack.code, 'AA');
      assert.deepEqual(ack.errors.filter((e) => /table 0085|table 0123/.test(e)), []);
      const report = (await s.fhir('GET', 'DiagnosticReport?code=http://loinc.org|54089-8')).body.entry[0].resource;
      assert.equal(report.status, 'registered');
      const detail = (await s.fhir('GET', 'Observation?code=http://loinc.org|57716-3')).body.entry[0].resource;
      assert.equal(detail.status, 'registered');
    });

    it('every code of tables 0123 (OBR-25) and 0085 (OBX-11) becomes its FHIR status, none warned as unknown', async () => {
      // Sender style: the same newborn-screening lab, one report per OBR-25 code of HL7 table 0123 (each
      // its own panel of one order), each with one result per OBX-11 code of table 0085 in turn.
      const reportStatus: [string, string][] = [['O', 'registered'], ['I', 'registered'], ['S', 'registered'], ['A', 'partial'], ['P', 'preliminary'], ['R', 'partial'], ['N', 'partial'], ['C', 'corrected'], ['M', 'amended'], ['F', 'final'], ['X', 'cancelled'], ['Y', 'unknown'], ['Z', 'unknown']];
      const resultStatus: [string, string][] = [['C', 'corrected'], ['D', 'entered-in-error'], ['F', 'final'], ['I', 'registered'], ['N', 'cancelled'], ['O', 'registered'], ['P', 'preliminary'], ['R', 'preliminary'], ['S', 'preliminary'], ['U', 'final'], ['W', 'entered-in-error'], ['X', 'cancelled'], ['A', 'amended'], ['B', 'amended']];
      const lines = ['MSH|^~\\&|NBSLIMS|MI-NBS-LAB|HIE|TESSERA|20261106120000-0500||ORU^R01^ORU_R01|ST-1|P|2.5.1', PID];
      reportStatus.forEach(([code], i) => {
        lines.push(`OBR|${i + 1}|ORD-700|NBS-2026-0700^MI-NBS-LAB|ST-R-${code}^Status panel ${code}^L|||20261106080000-0500|||||||||||||||20261106115900-0500|||${code}`);
        const [obx] = resultStatus[i];
        lines.push(`OBX|1|NM|ST-O-${obx}^Status result ${obx}^L||${10 + i}|umol/L^^UCUM|||||${obx}|||20261106080000-0500`);
      });
      // The last OBR takes the table 0085 codes left over.
      resultStatus.slice(reportStatus.length).forEach(([obx], k) => lines.push(`OBX|${k + 2}|NM|ST-O-${obx}^Status result ${obx}^L||${50 + k}|umol/L^^UCUM|||||${obx}|||20261106080000-0500`));
      const ack = await sender.send(lines.join('\r'));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      assert.deepEqual(ack.errors.filter((e) => /table 0085|table 0123/.test(e)), []);
      for (const [code, status] of reportStatus) {
        const report = (await s.fhir('GET', `DiagnosticReport?code=ST-R-${code}`)).body.entry?.[0]?.resource;
        assert.equal(report?.status, status, `OBR-25 ${code}`);
      }
      for (const [code, status] of resultStatus) {
        const result = (await s.fhir('GET', `Observation?code=ST-O-${code}`)).body.entry?.[0]?.resource;
        assert.equal(result?.status, status, `OBX-11 ${code}`);
      }
    });

    it('every OBX value type is stored as a FHIR value, or named in a warning (never dropped silently)', async () => {
      // Sender style: a hospital laboratory's v2.5.1 ORU carrying one result of each OBX-2 type HL7 lists.
      const values: [string, string, string][] = [
        ['CE', '260385009^Negative^SCT', 'valueCodeableConcept'],
        ['CWE', '10828004^Positive^SCT', 'valueCodeableConcept'],
        ['CX', 'LAB-778^^^ACMELAB', 'valueString'],
        ['DT', '20261102', 'valueDateTime'],
        ['DTM', '20261102081500', 'valueDateTime'],
        ['ED', 'LAB^AP^PDF^Base64^JVBERi0xLjQK', ''],
        ['FT', 'Smear reviewed\\.br\\by pathologist', 'valueString'],
        ['NM', '7.2', 'valueQuantity'],
        ['SN', '<^0.5', 'valueQuantity'],
        ['ST', 'Hemolyzed', 'valueString'],
        ['TX', 'See comment', 'valueString'],
        ['TS', '202611020815', 'valueDateTime'],
        ['TM', '0815', 'valueTime'],
        ['XAD', '12 Lake St^^Lansing^MI^48917', 'valueString'],
        ['XCN', '998877^Reyes^Ana^^^Dr', 'valueString'],
        ['XPN', 'Reyes^Ana', 'valueString'],
        ['XTN', '^WPN^PH^^1^517^5550199', 'valueString'],
        ['NA', '1.2^1.4^1.9', 'valueString'],
        ['RP', 'https://lab.example.org/images/778^ACMELAB^IM^JPEG', 'valueString'],
      ];
      const message = [
        'MSH|^~\\&|NBSLIMS|MI-NBS-LAB|HIE|TESSERA|20261105120000-0500||ORU^R01^ORU_R01|VT-1|P|2.5.1',
        PID,
        'OBR|1|ORD-600|LAB-600^MI-NBS-LAB|11502-2^Laboratory report^LN|||20261105080000-0500',
        ...values.map(([type, value], i) => `OBX|${i + 1}|${type}|VT-${type}^Value of type ${type}^L||${value}||||||F`),
      ].join('\r');
      const ack = await sender.send(message);
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      const stored = new Map<string, any>();
      for (const [type, , element] of values) {
        const found = (await s.fhir('GET', `Observation?code=VT-${type}`)).body.entry?.[0]?.resource;
        stored.set(type, found);
        if (element) assert.ok(found?.[element] !== undefined, `${type}: stored as ${element}: ${JSON.stringify(found)}`);
        else assert.ok(ack.errors.some((e) => e.includes(`ED embedded data`)), `${type}: warned`);
      }
      assert.equal(stored.get('XTN').valueString, '5175550199');
      assert.equal(stored.get('TM').valueTime, '08:15:00');
      assert.equal(stored.get('FT').valueString, 'Smear reviewed\nby pathologist');
      assert.equal(stored.get('SN').valueQuantity.comparator, '<');
      assert.equal(stored.get('XCN').valueString, 'Dr Ana Reyes');
      assert.ok(ack.errors.some((e) => /RP reference pointer stored as text/.test(e)));
    });
  });
}
