import { MessageLog } from '../messages/message-log.js';
import type { Repository } from '../store/repository.js';
import { auditLogIfOn } from './audit-attachment.js';
import { intakeAuditRecord } from './audit-record.js';

/**
 * Records a message the intake received (an HL7 v2 message over MLLP, a C-CDA document over HTTP) as an
 * Import event from its message-log entry: the participant, the patient and what was written, the
 * outcome. Called before the sender is answered (ACK, HTTP response), like every audit record.
 */
export async function recordIntake(repo: Repository, messageId: string): Promise<void> {
  const audit = auditLogIfOn(repo);
  if (!audit) return;
  const logged = await new MessageLog(repo.sql).get(messageId);
  if (logged) await audit.record(intakeAuditRecord(logged));
}
