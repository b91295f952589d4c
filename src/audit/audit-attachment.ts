import type { Resource } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/outcome.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import type { AuditLog } from './audit-log.js';

/**
 * Ties the audit log to the repository the engine works on, and keeps AuditEvent out of the resource
 * tables: AuditEvents are written by the server alone, into the audit log, so a write of one through
 * any path (REST, a Bundle's entries, an import) is refused inside its transaction. The engine finds
 * the log through it (`auditLogOf`) to answer AuditEvent searches and $disclosures.
 */
export class AuditAttachment implements WriteObserver {
  readonly types: ReadonlySet<string> = new Set(['AuditEvent']);

  constructor(readonly log: AuditLog | undefined) {}

  async written(_repo: Repository, _resources: Resource[]): Promise<void> {
    throw refusedWrite();
  }

  async deleted(): Promise<void> {
    throw refusedWrite();
  }
}

export function refusedWrite(): Error {
  return fhirError(405, 'not-supported', 'AuditEvent is written by the server only: the audit log is append-only');
}

/** The audit log of the repository; none when the server runs without one (TESSERA_AUDIT=off). */
export function auditLogIfOn(repo: Repository): AuditLog | undefined {
  return repo.observerOf(AuditAttachment)?.log;
}

/** The audit log of the repository, or a 503 when the server runs without one (TESSERA_AUDIT=off). */
export function auditLogOf(repo: Repository): AuditLog {
  const log = auditLogIfOn(repo);
  if (!log) throw fhirError(503, 'not-supported', 'The audit log is turned off on this server (TESSERA_AUDIT=off)');
  return log;
}
