import { policyOf, type FhirRequest, type FhirResponse } from '../engine/fhir-request.js';
import type { Repository } from '../store/repository.js';
import { auditLogOf, refusedWrite } from './audit-attachment.js';
import { entityOwners } from './entity-owners.js';
import { auditSearchBundle, findAuditEvents, parseAuditQuery, readAuditEvent } from './audit-search.js';

/**
 * Every interaction on AuditEvent, answered from the audit log rather than the resource tables: search
 * (GET or POST _search) needs `AuditEvent.s`, read needs `AuditEvent.r`; anything else is refused, since
 * only the server writes AuditEvents.
 */
export async function auditEventInteraction(repo: Repository, req: FhirRequest): Promise<FhirResponse> {
  const [, second] = req.segments;
  const n = req.segments.length;
  if (n === 1 && req.method === 'GET') return search(repo, req, req.query);
  if (n === 2 && second === '_search' && req.method === 'POST') {
    const form = typeof req.body === 'string' ? new URLSearchParams(req.body) : new URLSearchParams();
    return search(repo, req, new URLSearchParams([...req.query, ...form]));
  }
  if (n === 2 && req.method === 'GET' && !second.startsWith('_') && !second.startsWith('$')) {
    policyOf(req).requirePrivacyOfficer('AuditEvent', 'r', 'The audit log');
    const log = auditLogOf(repo);
    await log.flush(); // this process's latest events are in the journal until the next flush
    return { status: 200, body: await readAuditEvent(log.db, second) };
  }
  throw refusedWrite();
}

async function search(repo: Repository, req: FhirRequest, query: URLSearchParams): Promise<FhirResponse> {
  policyOf(req).requirePrivacyOfficer('AuditEvent', 's', 'The audit log');
  const q = parseAuditQuery(query);
  for (const key of q.keys) if (key.kind === 'e') key.owners = await entityOwners(repo, key.refs);
  const log = auditLogOf(repo);
  await log.flush(); // this process's latest events are in the journal until the next flush
  const rows = await findAuditEvents(log.db, q);
  return { status: 200, body: auditSearchBundle(req.baseUrl, query, q, rows) };
}
