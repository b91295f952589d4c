import type { FastifyRequest } from 'fastify';
import { mergeSubjects, type AuditSubjects } from '../audit/audit-subjects.js';

/**
 * What a route outside the FHIR engine disclosed (the message log's raw messages name a patient and what
 * was written for them), for the audit record the HTTP layer writes for such routes: the route says it
 * here, and the `onSend` hook puts it in the AuditEvent, so that a privacy officer's accounting of
 * disclosures includes an interface analyst reading a patient's message.
 */
const disclosed = new WeakMap<FastifyRequest, AuditSubjects>();

/** Adds what `req` disclosed to what it disclosed before. */
export function recordDisclosure(req: FastifyRequest, subjects: AuditSubjects): void {
  const all: AuditSubjects = disclosed.get(req) ?? { resources: [], patients: new Map() };
  mergeSubjects(all, subjects);
  disclosed.set(req, all);
}

export function disclosureOf(req: FastifyRequest): AuditSubjects | undefined {
  return disclosed.get(req);
}
