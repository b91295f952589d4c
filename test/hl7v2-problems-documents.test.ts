import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender } from './helpers/mllp.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const PID = 'PID|1||W-5521^^^WESTSIDE^MR||Karls^Tom^Andrew||19700530|M';
const problem = (event: string, control: string, action: string, status: string, resolved = '') =>
  [`MSH|^~\\&|EHR|WESTSIDE|HIE|TESSERA|20261120164652||PPR^${event}|${control}|P|2.3.1`, PID, `PRB|${action}|20261120164600|596.5^Bladder dysfunction^I9|PI-26744|||20261101||${resolved}|||||${status}||20261015`].join('\r');
const document = (event: string, control: string, status: string, text: string[]) =>
  [
    `MSH|^~\\&|EHR|WESTSIDE|HIE|TESSERA|20261121090000||MDM^${event}^MDM_T02|${control}|P|2.5.1`,
    'EVN|' + event + '|20261121090000',
    PID,
    `TXA|1|DS^Discharge summary^HL70270|TX|20261121085500||20261121090000||||||DOC-4471|||||${status}`,
    ...text.map((line, i) => `OBX|${i + 1}|TX|18842-5^Discharge summary^LN||${line}||||||F`),
  ].join('\r');

for (const backend of BACKENDS) {
  describe(`HL7 v2 problems (PPR) and documents (MDM) (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      const port = (await s.tessera.startMllp()) as number;
      await addParticipant(s.tessera.repo, { name: 'Westside Medical', mrnSystem: 'urn:example:westside:mrn', hl7Facility: 'WESTSIDE' });
      sender = new MllpSender(port);
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    it('PPR: a problem added, resolved by an update, then withdrawn is one Condition through its life', async () => {
      const added = await sender.send(problem('PC1', 'P1', 'AD', 'ACTIVE'));
      assert.equal(added.code, 'AA', added.errors.join('; '));
      const find = async () => (await s.fhir('GET', 'Condition?identifier=PI-26744')).body.entry?.map((e: any) => e.resource) ?? [];
      let [condition] = await find();
      assert.equal(condition.clinicalStatus.coding[0].code, 'active');
      assert.equal(condition.code.coding[0].system, 'http://hl7.org/fhir/sid/icd-9-cm');
      assert.equal(condition.onsetDateTime, '2026-10-15');
      assert.equal(condition.category[0].coding[0].code, 'problem-list-item');

      assert.equal((await sender.send(problem('PC2', 'P2', 'UP', 'Resolved', '20261119'))).code, 'AA');
      const updated = await find();
      assert.equal(updated.length, 1, 'the update reaches the same problem');
      [condition] = updated;
      assert.equal(condition.clinicalStatus.coding[0].code, 'resolved');
      assert.equal(condition.abatementDateTime, '2026-11-19');

      assert.equal((await sender.send(problem('PC3', 'P3', 'DE', 'Deleted'))).code, 'AA');
      [condition] = await find();
      assert.equal(condition.verificationStatus.coding[0].code, 'entered-in-error');
      assert.equal(condition.clinicalStatus, undefined);
      const history = await s.fhir('GET', `Condition/${condition.id}/_history`);
      assert.equal(history.body.total, 3, 'what was said and withdrawn stays in the history');
    });

    it('a PPR without a PRB segment gets AE and changes nothing', async () => {
      const before = (await s.fhir('GET', 'Condition?_summary=count')).body.total;
      const ack = await sender.send([`MSH|^~\\&|EHR|WESTSIDE|HIE|TESSERA|20261120164652||PPR^PC1|P9|P|2.3.1`, PID].join('\r'));
      assert.equal(ack.code, 'AE');
      assert.match(ack.errors.join('; '), /no PRB segment/);
      assert.equal((await s.fhir('GET', 'Condition?_summary=count')).body.total, before);
    });

    it('MDM: a document with its text, replaced by an edited version, then cancelled, is one DocumentReference', async () => {
      const original = await sender.send(document('T02', 'D1', 'DO', ['Admitted with chest pain.', 'Discharged home \\T\\ stable.']));
      assert.equal(original.code, 'AA', original.errors.join('; '));
      const find = async () => (await s.fhir('GET', 'DocumentReference?identifier=DOC-4471')).body.entry?.map((e: any) => e.resource) ?? [];
      let [doc] = await find();
      assert.equal(doc.docStatus, 'preliminary');
      assert.equal(doc.type.text ?? doc.type.coding[0].display, 'Discharge summary');
      assert.equal(Buffer.from(doc.content[0].attachment.data, 'base64').toString('utf8'), 'Admitted with chest pain.\nDischarged home & stable.');
      assert.match(doc.subject.reference, /^Patient\//);

      assert.equal((await sender.send(document('T08', 'D2', 'AU', ['Admitted with chest pain; troponin negative.']))).code, 'AA');
      const edited = await find();
      assert.equal(edited.length, 1);
      [doc] = edited;
      assert.equal(doc.docStatus, 'final');
      assert.equal(Buffer.from(doc.content[0].attachment.data, 'base64').toString('utf8'), 'Admitted with chest pain; troponin negative.');

      assert.equal((await sender.send(document('T11', 'D3', 'AU', []))).code, 'AA');
      [doc] = await find();
      assert.equal(doc.status, 'entered-in-error');
    });
  });
}
