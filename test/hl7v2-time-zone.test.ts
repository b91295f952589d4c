import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { setParticipantTimeZone } from '../src/participants/time-zone.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender } from './helpers/mllp.js';
import { oruMessage, type Demographics } from './helpers/record-sources.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/*
 * HL7 v2 times without a UTC offset (issue 18: they were stored as UTC silently). An ORU^R01 over MLLP
 * (shape from the public v2.5.1 samples: helpers/record-sources.ts) whose MSH-7 and OBX-14 carry no
 * offset, from a participant with and without a configured time zone.
 */
const PERSON: Demographics = { given: 'Lena', family: 'Marsh', birth: '19700102', gender: 'F', street: '9 Elm St', city: 'Albany', zip: '12207', phone: '518-555-0100' };

for (const backend of BACKENDS) {
  describe(`HL7 v2 times without an offset: the sender's time zone (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      sender = new MllpSender((await s.tessera.startMllp()) as number);
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    const effective = async (mrnSystem: string, mrn: string): Promise<string> => {
      const patient = await s.fhir('GET', `Patient?identifier=${encodeURIComponent(`${mrnSystem}|${mrn}`)}`);
      const id = patient.body.entry[0].resource.id;
      const obs = await s.fhir('GET', `Observation?subject=Patient/${id}&code=http://loinc.org|4548-4`);
      return obs.body.entry[0].resource.effectiveDateTime;
    };

    it('a participant with a configured zone: local times stored with the offset in force then (EDT in October)', async () => {
      const { participant } = await addParticipant(s.tessera.repo, { name: 'Albany Lab', mrnSystem: 'urn:oid:2.16.840.1.113883.19.201', hl7Facility: 'ALBANY' });
      await setParticipantTimeZone(s.tessera.db, participant.id, 'America/New_York');
      const ack = await sender.send(oruMessage('ALBANY', 'TZ-1', 'A-1', PERSON, 'ORD-TZ1', [{ loinc: '4548-4', display: 'Hemoglobin A1c', time: '20261001083000', value: '6.1', unit: '%' }]));
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      assert.ok(!ack.errors.some((e) => /UTC/.test(e)), 'no warning: the zone is known');
      const stored = await effective('urn:oid:2.16.840.1.113883.19.201', 'A-1');
      assert.equal(Date.parse(stored), Date.parse('2026-10-01T12:30:00Z'), `08:30 in New York is 12:30 UTC, stored ${stored}`);
    });

    it('without a zone: stored as UTC, and the acknowledgement says so', async () => {
      await addParticipant(s.tessera.repo, { name: 'Nowhere Lab', mrnSystem: 'urn:oid:2.16.840.1.113883.19.202', hl7Facility: 'NOWHERE' });
      const ack = await sender.send(oruMessage('NOWHERE', 'TZ-2', 'N-1', { ...PERSON, given: 'Nora' }, 'ORD-TZ2', [{ loinc: '4548-4', display: 'Hemoglobin A1c', time: '20261001083000', value: '6.2', unit: '%' }]));
      assert.equal(ack.code, 'AA');
      assert.ok(ack.errors.some((e) => /without a UTC offset.*stored as UTC/.test(e)), ack.raw);
      assert.equal(Date.parse(await effective('urn:oid:2.16.840.1.113883.19.202', 'N-1')), Date.parse('2026-10-01T08:30:00Z'));
    });

    it('an unknown zone name is refused', async () => {
      const { participant } = await addParticipant(s.tessera.repo, { name: 'Typo Lab', mrnSystem: 'urn:oid:2.16.840.1.113883.19.203', hl7Facility: 'TYPO' });
      await assert.rejects(setParticipantTimeZone(s.tessera.db, participant.id, 'America/Nowhere'), /not an IANA time zone/);
    });
  });
}
