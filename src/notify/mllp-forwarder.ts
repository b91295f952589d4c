import net from 'node:net';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

/** What a subscriber's interface engine answered (MSA-1) and why (MSA-3 / ERR). */
export interface ForwardResult {
  code: string;
  text: string;
}

/**
 * Sends one HL7 v2 message over MLLP to `mllp://host:port` and waits for the ACK. The caller decides
 * from MSA-1: AA / CA is a delivery, AE / CE an error to retry, AR / CR a refusal.
 */
export function forwardOverMllp(endpoint: string, message: string, timeoutMs: number): Promise<ForwardResult> {
  const m = /^mllp:\/\/([^:/\s]+):(\d+)$/.exec(endpoint);
  if (!m) return Promise.reject(new Error(`not an mllp://host:port endpoint: ${endpoint}`));
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(m[2]), m[1]);
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`no acknowledgement within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([VT]), Buffer.from(message, 'utf8'), Buffer.from([FS, CR])])));
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf(FS);
      if (end < 0) return;
      clearTimeout(timer);
      socket.end();
      resolve(ackOf(data.subarray(data.indexOf(VT) + 1, end).toString('utf8')));
    });
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the connection closed before an acknowledgement')));
  });
}

function ackOf(text: string): ForwardResult {
  const segments = text.split(/\r\n|\r|\n/);
  const msa = segments.find((s) => s.startsWith('MSA'))?.split('|') ?? [];
  const err = segments.find((s) => s.startsWith('ERR'))?.split('|');
  return { code: msa[1] ?? '', text: err?.[8] || msa[3] || '' };
}
