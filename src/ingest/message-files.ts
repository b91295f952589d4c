import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Participant } from '../participants/participants.js';
import type { CcdaIntake } from './ccda-intake.js';
import type { Hl7v2Intake } from './hl7v2-intake.js';

export const CCDA_FILE_EXTENSIONS = ['.xml', '.ccda', '.cda'];
export const HL7V2_FILE_EXTENSIONS = ['.hl7'];

export const isCcdaFile = (file: string): boolean => CCDA_FILE_EXTENSIONS.includes(extname(file).toLowerCase());

/** One message or document of a file, and what became of it. */
export interface MessageFileOutcome {
  file: string;
  /** Position of the message in an HL7 v2 file (1-based). */
  message?: number;
  messageId: string;
  status: string;
  /** HL7 v2: the ACK code. */
  ackCode?: string;
  detail?: string;
  warnings: string[];
}

/**
 * `tessera import` of C-CDA documents (on `participant`'s behalf) and HL7 v2 message files (attributed
 * by their MSH sender, as over MLLP; messages start at each MSH segment), through the same intakes and
 * message log as the network paths: a document or message that fails is logged with its reason and the
 * rest go on.
 */
export async function importMessageFiles(
  intakes: { hl7v2: Hl7v2Intake; ccda: CcdaIntake },
  files: string[],
  participant: Participant | undefined,
  onFile?: (file: string) => void,
): Promise<MessageFileOutcome[]> {
  const outcomes: MessageFileOutcome[] = [];
  for (const file of files) {
    if (isCcdaFile(file)) {
      const text = readFileSync(file, 'utf8');
      if (!participant) throw new Error('C-CDA documents are imported on a participant\'s behalf: add --participant ID (see tessera participants list)');
      const r = await intakes.ccda.import(text, participant, 'file');
      outcomes.push({ file, messageId: r.messageId, status: r.status, detail: r.error, warnings: r.warnings });
    } else {
      // Split on the bytes (read one to one as Latin-1): each message is decoded by its own MSH-18.
      const text = readFileSync(file).toString('latin1');
      const messages = text.replace(/\r\n?|\n/g, '\r').split(/\r(?=MSH\|)/).map((m) => m.replace(/\r+$/, '')).filter((m) => m.trim());
      for (const [index, raw] of messages.entries()) {
        const result = await intakes.hl7v2.process(await intakes.hl7v2.admit(Buffer.from(raw, 'latin1'), 'file'));
        const reason = /\rERR\|[^\r]*/.exec(result.ack)?.[0].split('|')[8];
        outcomes.push({ file, message: index + 1, messageId: result.messageId, status: result.status, ackCode: result.ackCode, detail: reason || undefined, warnings: [] });
      }
    }
    onFile?.(file);
  }
  return outcomes;
}
