import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rewritePatientIdentifiers } from '../src/notify/forward-identifiers.js';

/**
 * PID-3 rewriting of forwarded HL7 v2 messages (the end-to-end forward through a real MLLP receiver is
 * in notify-adt.test.ts). Synthetic ADT in the Epic style of test/hl7v2-mllp.test.ts, one with
 * non-standard delimiters as some engines send.
 */
const adt = [
  'MSH|^~\\&|EPIC|NORTHGATE|HIE|TESSERA|20261101083000||ADT^A01^ADT_A01|N-1|P|2.5.1',
  'PID|1|OLD-9|E-500^^^NORTHGATE^MR~999-31-4477^^^USSSA^SS|ALT-1|Delacroix^Marguerite||19580917|F',
  'PV1|1|I|4E^412^B^NORTHGATE',
].join('\r');
const practice = { value: 'P-100', universalId: 'urn:example:oak:mrn', type: 'MR' as const };

describe('Forwarded messages name the patient as the subscriber knows them', () => {
  it("replaces PID-2, -3 and -4 with the subscriber's identifiers, the rest unchanged", () => {
    const out = rewritePatientIdentifiers(adt, [practice, { value: 'P-101', namespace: 'OAK', universalId: 'urn:example:oak:mrn', type: 'MR' }], false).split('\r');
    assert.equal(out[1], 'PID|1||P-100^^^&urn:example:oak:mrn&URI^MR~P-101^^^OAK&urn:example:oak:mrn&URI^MR||Delacroix^Marguerite||19580917|F');
    assert.equal(out[0], adt.split('\r')[0]);
    assert.equal(out[2], adt.split('\r')[2]);
  });

  it("keeps the sender's identifiers after the subscriber's when the community allows it", () => {
    const pid = rewritePatientIdentifiers(adt, [practice], true).split('\r')[1];
    assert.equal(pid, 'PID|1|OLD-9|P-100^^^&urn:example:oak:mrn&URI^MR~E-500^^^NORTHGATE^MR~999-31-4477^^^USSSA^SS|ALT-1|Delacroix^Marguerite||19580917|F');
  });

  it("writes in the message's own delimiters and escapes them in values", () => {
    const odd = adt.replace('MSH|^~\\&', 'MSH|^~\\#').replace(/&/g, '#');
    const pid = rewritePatientIdentifiers(odd, [{ value: 'A^B', universalId: 'urn:x', namespace: 'N#1', type: 'MR' }], false).split('\r')[1];
    assert.equal(pid, 'PID|1||A\\S\\B^^^N\\T\\1#urn:x#URI^MR||Delacroix^Marguerite||19580917|F');
  });
});
