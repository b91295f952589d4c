import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Hl7Message } from '@medplum/core';
import { importMessageFiles } from '../src/ingest/message-files.js';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { readAck, sendRawFrame } from './helpers/mllp.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Sender styles: European and older US hospital systems that write ISO-8859-1 or Windows-1252 bytes,
 * some declaring it in MSH-18 ("8859/1", HL7 table 0211), many not; and a UTF-8 sender that labels its
 * messages 8859/1 out of habit. The names (Müller Jürgen, O’Brien Zoë) are made up; the bytes are what
 * those code pages produce for them.
 */
const adt = (control: string, mrn: string, family: string, given: string, charset = '') =>
  `MSH|^~\\&|PAS|STMARY|HIE|TESSERA|20261201101500||ADT^A04|${control}|P|2.5.1||||||${charset}\rEVN|A04|20261201101500\rPID|1||${mrn}^^^STMARY^MR||${family}^${given}||19640212|M`;

/** Windows-1252 bytes of a text (its characters beyond Latin-1 as that code page places them). */
function windows1252(text: string): Buffer {
  const extra: Record<string, number> = { '’': 0x92, '‘': 0x91, '€': 0x80, 'Œ': 0x8c, '“': 0x93, '”': 0x94 };
  return Buffer.from([...text].map((c) => extra[c] ?? c.charCodeAt(0)));
}

for (const backend of BACKENDS) {
  describe(`HL7 v2 character sets (${backend})`, () => {
    let s: TestServer;
    let port: number;
    const send = async (bytes: Buffer) => readAck(Hl7Message.parse(await sendRawFrame(port, bytes)));
    const patient = async (mrn: string) => (await s.fhir('GET', `Patient?identifier=${encodeURIComponent(`urn:example:stmary:mrn|${mrn}`)}`)).body.entry?.[0]?.resource;
    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      port = (await s.tessera.startMllp()) as number;
      await addParticipant(s.tessera.repo, { name: 'St Mary', mrnSystem: 'urn:example:stmary:mrn', hl7Facility: 'STMARY' });
    });
    after(async () => s?.close());

    it('ISO-8859-1 declared in MSH-18 (8859/1) is decoded as such, without a warning', async () => {
      const ack = await send(Buffer.from(adt('C-1', 'M-1', 'Müller', 'Jürgen', '8859/1'), 'latin1'));
      assert.equal(ack.code, 'AA');
      assert.deepEqual(ack.errors, []);
      const p = await patient('M-1');
      assert.equal(p.name[0].family, 'Müller');
      assert.deepEqual(p.name[0].given, ['Jürgen']);
    });

    it('the other character sets of table 0211 in MSH-18: 8859/2, 8859/5, 8859/7, ISO IR87, KS X 1001, UNICODE UTF-16; an unknown one is warned', async () => {
      // Sender styles: Central European (Polish), Cyrillic, Greek, Japanese and Korean hospital systems
      // writing their national code page and naming it in MSH-18; one writing UTF-16 without a byte-order
      // mark. The names are made up; the bytes are those code pages' (checked against Node's decoders).
      const withName = (control: string, mrn: string, charset: string, family: number[], given: string) => {
        const [head, tail] = adt(control, mrn, '\u0000', given, charset).split('\u0000');
        return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(family), Buffer.from(tail, 'latin1')]);
      };
      const cases: [string, number[], string][] = [
        ['8859/2', [0x57, 0x61, 0xb3, 0xea, 0x73, 0x61], 'Wałęsa'],
        ['8859/5', [0xb8, 0xd2, 0xd0, 0xdd, 0xde, 0xd2], 'Иванов'],
        ['8859/7', [0xcd, 0xe9, 0xea, 0xef, 0xeb, 0xdc, 0xef, 0xf5], 'Νικολάου'],
        ['ISO IR87', [0x8e, 0x52, 0x93, 0x63], '山田'],
        ['KS X 1001', [0xb1, 0xe8], '김'],
      ];
      for (const [i, [charset, bytes, family]] of cases.entries()) {
        const ack = await send(withName(`CS-${i}`, `CS-${i}`, charset, bytes, 'Anna'));
        assert.equal(ack.code, 'AA', `${charset}: ${ack.errors.join('; ')}`);
        assert.deepEqual(ack.errors, [], charset);
        assert.equal((await patient(`CS-${i}`)).name[0].family, family, charset);
      }
      const utf16 = Buffer.from(adt('CS-16', 'CS-16', 'Ødegård', 'Åse', 'UNICODE UTF-16'), 'utf16le');
      const ack16 = await send(utf16);
      assert.equal(ack16.code, 'AA', ack16.errors.join('; '));
      assert.equal((await patient('CS-16')).name[0].family, 'Ødegård');
      const unknown = await send(Buffer.from(adt('CS-X', 'CS-X', 'Smith', 'Ann', 'EBCDIC'), 'latin1'));
      assert.equal(unknown.code, 'AA');
      assert.match(unknown.errors.join('; '), /MSH-18 character set "EBCDIC" is not one Tessera can decode: read as UTF-8/);
    });

    it('ISO-8859-1 without MSH-18 (not valid UTF-8) is read as Windows-1252 with a warning, never as U+FFFD', async () => {
      const ack = await send(Buffer.from(adt('C-2', 'M-2', 'Müller', 'Jürgen'), 'latin1'));
      assert.equal(ack.code, 'AA');
      assert.match(ack.errors.join('; '), /not valid UTF-8 and names no character set \(MSH-18\): read as Windows-1252/);
      const p = await patient('M-2');
      assert.equal(p.name[0].family, 'Müller');
      assert.ok(!JSON.stringify(p).includes('\uFFFD'));
    });

    it('Windows-1252 without MSH-18: its curly apostrophe and ë come through, with a warning', async () => {
      const ack = await send(windows1252(adt('C-3', 'M-3', 'O’Brien', 'Zoë')));
      assert.equal(ack.code, 'AA');
      assert.match(ack.errors.join('; '), /read as Windows-1252/);
      assert.equal((await patient('M-3')).name[0].family, 'O’Brien');
      assert.deepEqual((await patient('M-3')).name[0].given, ['Zoë']);
    });

    it('Windows-1252 bytes labelled 8859/1 (the usual habit): ’ is read as Windows-1252 places it, not as a C1 control code', async () => {
      const ack = await send(windows1252(adt('C-4', 'M-4', 'O’Neill', 'Zoë', '8859/1')));
      assert.equal(ack.code, 'AA');
      assert.deepEqual(ack.errors, []);
      assert.equal((await patient('M-4')).name[0].family, 'O’Neill');
    });

    it('UTF-8 declared as UNICODE UTF-8, and UTF-8 mislabelled 8859/1 (read as UTF-8, with a warning)', async () => {
      const utf8 = await send(Buffer.from(adt('C-5', 'M-5', 'Łukasiewicz', 'Zoë', 'UNICODE UTF-8'), 'utf8'));
      assert.equal(utf8.code, 'AA');
      assert.deepEqual(utf8.errors, []);
      assert.equal((await patient('M-5')).name[0].family, 'Łukasiewicz');
      const mislabelled = await send(Buffer.from(adt('C-6', 'M-6', 'Müller', 'Jürgen', '8859/1'), 'utf8'));
      assert.match(mislabelled.errors.join('; '), /MSH-18 says 8859\/1 but the message is UTF-8/);
      assert.equal((await patient('M-6')).name[0].family, 'Müller');
    });

    it('a \\Xhh\\ escape that is not UTF-8 (a Latin-1 sender escaping ü as \\XFC\\) is stored with a warning, never silently as U+FFFD', async () => {
      const ack = await send(Buffer.from(adt('C-9', 'M-9', 'M\\XFC\\ller', 'Hans'), 'utf8'));
      assert.equal(ack.code, 'AA');
      assert.match(ack.errors.join('; '), /U\+FFFD/);
    });

    it('a file of ISO-8859-1 messages imported with tessera import is decoded the same way', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-charset-'));
      try {
        const file = join(dir, 'feed.hl7');
        writeFileSync(file, Buffer.from(`${adt('C-7', 'M-7', 'Gödel', 'Kurt', '8859/1')}\r${adt('C-8', 'M-8', 'Jäger', 'Anna')}\r`, 'latin1'));
        const outcomes = await importMessageFiles({ hl7v2: s.tessera.intake, ccda: s.tessera.ccda }, [file], undefined);
        assert.deepEqual(outcomes.map((o) => o.ackCode), ['AA', 'AA']);
        assert.equal((await patient('M-7')).name[0].family, 'Gödel');
        assert.equal((await patient('M-8')).name[0].family, 'Jäger');
        const logged = await s.tessera.db.query<{ warnings: string | null }>("SELECT warnings FROM message WHERE control_id = 'C-8'");
        assert.match(logged[0].warnings ?? '', /Windows-1252/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
