import net from 'node:net';
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { unescapeV2 } from '../../src/hl7v2/message-reader.js';

/** What came back for one message: MSA-1 and the ERR texts (ERR-8, else MSA-3). */
export interface Ack {
  code: string;
  errors: string[];
  raw: string;
}

export function readAck(message: Hl7Message): Ack {
  const msa = message.getSegment('MSA');
  const text = (t: string | undefined) => unescapeV2(t ?? '', message.context);
  const errors = message.getAllSegments('ERR').map((e) => text(e.getField(8)?.toString() || e.getField(3)?.toString()));
  return { code: msa?.getField(1)?.toString() ?? '', errors: errors.length ? errors : [text(msa?.getField(3)?.toString())].filter(Boolean), raw: message.toString() };
}

/** An MLLP client not written here (@medplum/hl7's Hl7Client), one connection, one message at a time. */
export class MllpSender {
  private readonly client: Hl7Client;

  constructor(port: number) {
    this.client = new Hl7Client({ host: '127.0.0.1', port, keepAlive: true });
  }

  async send(text: string): Promise<Ack> {
    const message = Hl7Message.parse(text.replace(/^\uFEFF/, '').trim().split(/\r\n|\r|\n/).join('\r'));
    return readAck(await this.client.sendAndWait(message, { timeoutMs: 30_000 }));
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** Sends raw bytes in one MLLP frame over a plain socket (for what a client library would refuse to send; text goes as UTF-8). */
export function sendRawFrame(port: number, text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from([0x0b]), typeof text === 'string' ? Buffer.from(text, 'utf8') : text, Buffer.from([0x1c, 0x0d])])));
    let data = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf(0x1c);
      if (end >= 0) {
        socket.end();
        resolve(data.subarray(data.indexOf(0x0b) + 1, end).toString('utf8'));
      }
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error('no acknowledgement within 30 s')), 30_000).unref();
  });
}
