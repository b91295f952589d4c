import type { V2Message } from './message-reader.js';

export type AckCode = 'AA' | 'AE' | 'AR';

export interface AckError {
  /** HL7 table 0357 (ERR-3). */
  code: string;
  text: string;
  /** ERR-2 error location, e.g. "PID^1^3". */
  location?: string;
  severity: 'E' | 'W';
}

const ERROR_NAMES: Record<string, string> = {
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '207': 'Application internal error',
};

/** Escapes text for an HL7 v2 field (section 2.7): delimiters become escape sequences, line breaks \.br\. */
export function escapeV2(text: string): string {
  return text
    .replace(/\\/g, '\\E\\')
    .replace(/\|/g, '\\F\\')
    .replace(/\^/g, '\\S\\')
    .replace(/&/g, '\\T\\')
    .replace(/~/g, '\\R\\')
    .replace(/\r?\n|\r/g, '\\.br\\');
}

function timestamp(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '') + '+0000';
}

/**
 * An original-mode acknowledgement (ACK) of a message: MSH with sender and receiver swapped, MSA with the
 * code and the acknowledged control id, the first error's text in MSA-3 (read by v2.3-era receivers), and
 * one ERR segment per error or warning (v2.5 style: location, code, severity, diagnostic text).
 */
export function buildAck(message: V2Message | undefined, code: AckCode, ackControlId: string, errors: AckError[] = [], fallback?: { controlId?: string; version?: string }): string {
  const h = message?.header;
  const field = (n: number) => (h ? h.segment.getField(n)?.toString() ?? '' : '');
  const version = message?.version || fallback?.version || '2.5.1';
  const trigger = h?.value(9, 2);
  const msh = ['MSH', '^~\\&', field(5), field(6), field(3), field(4), timestamp(new Date()), '', trigger ? `ACK^${trigger}^ACK` : 'ACK', ackControlId, field(11) || 'P', version].join('|');
  const firstError = errors.find((e) => e.severity === 'E');
  const msa = ['MSA', code, escapeV2(message?.controlId ?? fallback?.controlId ?? ''), firstError ? escapeV2(firstError.text).slice(0, 80) : ''].join('|').replace(/\|+$/, '');
  const err = errors.map((e) =>
    ['ERR', '', e.location ?? '', `${e.code}^${ERROR_NAMES[e.code] ?? 'Application error'}^HL70357`, e.severity, '', '', '', escapeV2(e.text)].join('|'),
  );
  return [msh, msa, ...err].join('\r');
}

/** The control id of a message that did not parse, if its MSH-10 can still be read (for the AR). */
export function salvageControlId(raw: string): { controlId?: string; version?: string } {
  const msh = raw.replace(/^[\s\u000b]+/, '').split(/\r\n|\r|\n/)[0] ?? '';
  if (!msh.startsWith('MSH') || msh.length < 4) {
    return {};
  }
  const fields = msh.split(msh[3]);
  return { controlId: fields[9] || undefined, version: fields[11]?.split('^')[0] || undefined };
}
