import { MessageLog } from '../messages/message-log.js';
import type { Repository } from '../store/repository.js';
import type { CcdaIntake } from './ccda-intake.js';
import type { Hl7v2Intake } from './hl7v2-intake.js';

export interface ReplayOutcome {
  messageId: string;
  /** processed, failed or duplicate after the replay. */
  status: string;
  /** HL7 v2 messages: the ACK code and text the sender would now get. */
  ackCode?: string;
  ack?: string;
}

/**
 * Runs a logged message through the current mappings again, by the intake of its format (HL7 v2 or
 * C-CDA). FHIR requests are not replayed: the client got its answer and re-sends itself. Undefined when
 * there is no such message.
 */
export async function replayMessage(repo: Repository, intakes: { hl7v2: Hl7v2Intake; ccda: CcdaIntake }, id: string): Promise<ReplayOutcome | undefined> {
  const logged = await new MessageLog(repo.sql).get(id);
  if (!logged) return undefined;
  if (logged.format === 'ccda') {
    const result = await intakes.ccda.replay(id);
    return result && { messageId: id, status: result.status };
  }
  if (logged.format === 'hl7v2') {
    const result = await intakes.hl7v2.replay(id);
    return result && { messageId: id, status: result.status, ackCode: result.ackCode, ack: result.ack };
  }
  throw new ReplayNotSupportedError(`a ${logged.format} message is not replayed: its sender got the answer and re-sends it`);
}

export class ReplayNotSupportedError extends Error {}
