import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender } from './helpers/mllp.js';
import { startMpiTestServer, type TestServer } from './helpers/server.js';

/**
 * The patient index's warnings on an HL7 v2 write (issue 16): what a FHIR caller reads in the answer's
 * OperationOutcome, a sender reads in its ACK (ERR, severity W) and an operator in the message log. Data:
 * ADT^A04 registrations as a hospital sends them (realistic PID: MRN with assigning authority, a second
 * identifier without one, as interfaces often send a licence number).
 */
for (const backend of BACKENDS) {
  describe(`master patient index warnings on HL7 v2 (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    let participantId: string;
    before(async () => {
      s = await startMpiTestServer(backend);
      s.tessera.config.mllpPort = 0;
      sender = new MllpSender((await s.tessera.startMllp()) as number);
      participantId = (await addParticipant(s.tessera.repo, { name: 'Riverside Hospital', mrnSystem: 'urn:example:riverside:mrn', hl7Facility: 'RIVERSIDE' })).participant.id as string;
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    const a04 = (control: string, pid3: string, name: string, birth: string, sex: string) =>
      [`MSH|^~\\&|ADT|RIVERSIDE|HIE|TESSERA|20261201090000||ADT^A04^ADT_A01|${control}|P|2.5.1`, 'EVN|A04|20261201085900', `PID|1||${pid3}||${name}||${birth}|${sex}`, 'PV1|1|O|CLINIC^1'].join('\r');
    const logged = async (control: string) => {
      const res = await fetch(`${s.url}/messages?sender=${participantId}`, { headers: { authorization: `Bearer ${s.token}` } });
      const { messages } = (await res.json()) as { messages: { id: string; controlId: string }[] };
      const id = messages.find((m) => m.controlId === control)?.id;
      assert.ok(id, `message ${control} in the log`);
      return (await (await fetch(`${s.url}/messages/${id}`, { headers: { authorization: `Bearer ${s.token}` } })).json()) as { status: string; warnings: string[] };
    };

    it('an identifier the index cannot use is a warning in the ACK and the message log', async () => {
      const ack = await sender.send(a04('RW-1', 'RV100^^^RIVERSIDE^MR~S99812345^^^^DL', 'Quellmalz^Ottilie', '19720314', 'F'));
      assert.equal(ack.code, 'AA', ack.raw);
      const entry = await logged('RW-1');
      assert.equal(entry.status, 'processed');
      const fromIndex = (w: string) => /identifier\[\d\]/.test(w);
      assert.ok(entry.warnings.some(fromIndex), JSON.stringify(entry.warnings));
      assert.ok(ack.errors.some(fromIndex), ack.raw);
    });

    it('one MRN sent for someone else: the ACK and the message log say so, and the steward event log has it', async () => {
      assert.equal((await sender.send(a04('RW-2', 'RV200^^^RIVERSIDE^MR', 'Oyelaran^Harriet', '19490420', 'F'))).code, 'AA');
      const ack = await sender.send(a04('RW-3', 'RV200^^^RIVERSIDE^MR', 'Brennan^Declan', '19881102', 'M'));
      assert.equal(ack.code, 'AA', ack.raw);
      // An ADT replaces the sender's record by its MRN (the source owns it): written, never without a word.
      const reuse = (w: string) => /contradicting its previous version \(first names differ, surnames differ, birth dates differ, sexes differ\)/.test(w);
      assert.ok(ack.errors.some(reuse), ack.raw);
      assert.ok((await logged('RW-3')).warnings.some(reuse));
      const events = await s.fhir('GET', 'Patient/$mpi-events?action=source-conflict');
      assert.equal(events.status, 200);
      assert.match(JSON.stringify(events.body), /source-conflict/);
      // A correction (one field) is no conflict.
      const fix = await sender.send(a04('RW-4', 'RV200^^^RIVERSIDE^MR', 'Brennan^Declan', '19881103', 'M'));
      assert.ok(!fix.errors.some(reuse), fix.raw);
    });
  });
}
