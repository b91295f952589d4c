import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAck, escapeV2, salvageControlId } from '../src/hl7v2/acknowledgement.js';
import { codingSystem, dateTime } from '../src/hl7v2/datatypes.js';
import { MalformedMessageError, unescapeV2, V2Message } from '../src/hl7v2/message-reader.js';

const SEPARATORS = { fieldSeparator: '|', componentSeparator: '^', repetitionSeparator: '~', subcomponentSeparator: '&' };

describe('HL7 v2 values', () => {
  it('decodes escape sequences, and escaping then decoding gives the text back', () => {
    assert.equal(unescapeV2('A\\T\\E \\F\\ \\S\\ \\R\\ \\E\\ line\\.br\\two \\X4869\\ \\H\\bold\\N\\', SEPARATORS), 'A&E | ^ ~ \\ line\ntwo Hi bold');
    const text = 'Smith & Sons | 50% ^ up ~ down \\ end\nnext';
    assert.equal(unescapeV2(escapeV2(text), SEPARATORS), text);
  });

  it('reads DTM/TS at the precision sent, refuses impossible dates, and takes a time without zone as UTC', () => {
    assert.equal(dateTime('1974'), '1974');
    assert.equal(dateTime('197403'), '1974-03');
    assert.equal(dateTime('19740312'), '1974-03-12');
    assert.equal(dateTime('197403120830'), '1974-03-12T08:30:00Z');
    assert.equal(dateTime('20261101082500-0500'), '2026-11-01T08:25:00-05:00');
    assert.equal(dateTime('20261101082500.1234+0215'), '2026-11-01T08:25:00.1234+02:15');
    assert.equal(dateTime('20230229'), undefined, 'no 29 February in 2023');
    assert.equal(dateTime('20241301'), undefined);
    assert.equal(dateTime('2024-01-01'), undefined, 'not the HL7 format');
    assert.equal(dateTime('202401012560'), undefined, 'minute 60');
  });

  it("a time without an offset is in the sender's zone: MSH-7's offset, else the participant's IANA zone (daylight saving included), else UTC and said", () => {
    assert.equal(dateTime('202610010830', { messageOffset: '-05:00', zone: 'Europe/Berlin' }), '2026-10-01T08:30:00-05:00', "MSH-7's offset first");
    assert.equal(dateTime('202610010830-0700', { messageOffset: '-05:00' }), '2026-10-01T08:30:00-07:00', 'its own offset before all');
    assert.equal(dateTime('202610010830', { zone: 'America/New_York' }), '2026-10-01T08:30:00-04:00', 'EDT in October');
    assert.equal(dateTime('202601150830', { zone: 'America/New_York' }), '2026-01-15T08:30:00-05:00', 'EST in January');
    assert.equal(dateTime('202607011200', { zone: 'Asia/Kolkata' }), '2026-07-01T12:00:00+05:30');
    assert.equal(dateTime('20261001', { zone: 'America/New_York' }), '2026-10-01', 'a date stays a date');
    let told = 0;
    assert.equal(dateTime('202610010830', {}, () => told++), '2026-10-01T08:30:00Z');
    assert.equal(told, 1, 'UTC assumed, and the caller told');
    dateTime('202610010830-0400', {}, () => told++);
    assert.equal(told, 1, 'not told when the value has an offset');
  });

  it('names coding systems by HL7 table 0396 and OIDs', () => {
    assert.equal(codingSystem('LN'), 'http://loinc.org');
    assert.equal(codingSystem('SCT'), 'http://snomed.info/sct');
    assert.equal(codingSystem('HL70078'), 'http://terminology.hl7.org/CodeSystem/v2-0078');
    assert.equal(codingSystem('2.16.840.1.113883.6.1'), 'urn:oid:2.16.840.1.113883.6.1');
    assert.equal(codingSystem('LOCAL LAB'), 'urn:tessera:hl7v2:coding-system:LOCAL%20LAB');
  });

  it('refuses what is not an HL7 v2 message, and reads MSH with the numbering of the standard', () => {
    assert.throws(() => V2Message.parse('hello'), MalformedMessageError);
    assert.throws(() => V2Message.parse('MSH|^~\\&|A|B|C|D|20260101||ADT^A01||P|2.5.1'), /MSH-10/);
    assert.throws(() => V2Message.parse('MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5.1\rpid|1'), /not a segment name/);
    const m = V2Message.parse('\uFEFFMSH|^~\\&|APP|FAC^1.2.3^ISO|R|RF|20260101||ORU^R01^ORU_R01|C-1|P|2.5.1\nPID|1||42^^^FAC^MR~7^^^X^PI\n');
    assert.deepEqual([m.type, m.controlId, m.version, m.sendingFacility, m.sendingApplication], ['ORU^R01', 'C-1', '2.5.1', 'FAC', 'APP']);
    const pid = m.segment('PID');
    assert.deepEqual(pid?.eachRepetition(3), [0, 1]);
    assert.equal(pid?.value(3, 5, 1, 1), 'PI');
  });

  it('acknowledges with the sender and receiver swapped, the control id echoed, and the error in MSA-3 and ERR', () => {
    const m = V2Message.parse('MSH|^~\\&|APP|FAC|HIE|TESSERA|20260101||ADT^A04|C-7|P|2.3');
    const ack = buildAck(m, 'AE', 'ACK-1', [{ code: '101', text: 'PID-3 | missing', location: 'PID^1^3', severity: 'E' }]).split('\r');
    assert.match(ack[0], /^MSH\|\^~\\&\|HIE\|TESSERA\|APP\|FAC\|\d{14}\+0000\|\|ACK\^A04\^ACK\|ACK-1\|P\|2\.3$/);
    assert.equal(ack[1], 'MSA|AE|C-7|PID-3 \\F\\ missing');
    assert.equal(ack[2], 'ERR||PID^1^3|101^Required field missing^HL70357|E||||PID-3 \\F\\ missing');
    assert.deepEqual(salvageControlId('MSH|^~\\&|A|B|C|D|2026||ADT^A01|CTRL-9|P|2.4\rZZZ'), { controlId: 'CTRL-9', version: '2.4' });
    assert.deepEqual(salvageControlId('garbage'), {});
  });
});
