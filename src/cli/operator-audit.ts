import { userInfo } from 'node:os';
import { operatorAuditRecord } from '../audit/audit-record.js';
import type { Tessera } from '../server/tessera.js';

/**
 * Records an operator's command in the audit log (who: the operating-system account running the CLI).
 * Called by each command that changes who may access what (users, clients, clearance, participants) or
 * shows raw data (a logged message), once it has done so.
 */
export async function recordOperatorAction(tessera: Tessera, command: string, target?: string): Promise<void> {
  let operator: string;
  try {
    operator = userInfo().username;
  } catch {
    operator = String(process.getuid?.() ?? 'unknown');
  }
  await tessera.audit?.record(operatorAuditRecord(command, target, operator));
}
