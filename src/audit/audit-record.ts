import { FhirError } from '../fhir/outcome.js';
import type { FhirRequest, FhirResponse } from '../engine/fhir-request.js';
import type { AuthContext } from '../security/token-service.js';
import type { LoggedMessage } from '../messages/message-log.js';
import { subjectsOf, type AuditSubjects } from './audit-subjects.js';

/** BALP / DICOM action codes: Create, Read, Update, Delete, Execute. */
export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';

/** AuditEvent.outcome: 0 success, 4 minor failure (the caller's fault), 8 serious failure (the server's), 12 major. */
export type AuditOutcome = 0 | 4 | 8 | 12;

/**
 * What one access or change was, before it becomes a BALP AuditEvent (audit-event.ts). Carries only what
 * BALP asks for: who, what, why, outcome, when, and the request id. The query string may hold PHI: it is
 * kept here for the AuditEvent's query entity (the audit store is protected) and must never be logged.
 */
export interface AuditRecord {
  /**
   * 'rest' for HTTP requests; 'login' for the token endpoint; 'import' for messages received (HL7 v2 over
   * MLLP); 'operator' for CLI actions; 'notification' for what a subscription delivered to its participant.
   */
  kind: 'rest' | 'login' | 'import' | 'operator' | 'notification';
  /** http://hl7.org/fhir/restful-interaction code (read, search-type, create, ...) or an operation name ($everything). */
  subtype: string;
  action: AuditAction;
  outcome: AuditOutcome;
  /** The HTTP status, or for an import the message's status in the message log (processed, failed, ...). */
  httpStatus: number | string;
  /** Epoch ms when the request was answered. */
  recorded: number;
  requestId: string;
  /** Who. Absent clientId: the caller could not be identified (a missing or bad token). */
  clientId?: string;
  user?: AuthContext['user'];
  organization?: string;
  tokenId?: string;
  /** The participant a message came from (an import has no token). */
  participant?: string;
  /** Why: a v3-ActReason code. */
  purposeOfUse?: string;
  /** The interaction touched a patient the caller reached under a break-the-glass grant. */
  breakTheGlass?: boolean;
  /** What: the resource type addressed (absent for system-level interactions). */
  resourceType?: string;
  /** The raw query string (PHI possible), for the query entity of searches and operations. */
  query?: string;
  subjects: AuditSubjects;
  /** What an operator action acted on, when it is not a FHIR resource: `client:{id}`, `user:{id}`, `message:{id}`. */
  target?: string;
}

/** The part of a FHIR request the audit record reads: a request refused before authentication has no auth. */
export type AuditedRequest = Pick<FhirRequest, 'method' | 'segments' | 'rawQuery' | 'policy'> & { auth?: AuthContext };

/** How a request ended: the engine's response, or the error it threw. */
export type AuditedResult = { response: FhirResponse } | { error: unknown };

/** The restful-interaction subtype and action of a request, from its method and path alone. */
export function interactionOf(method: string, segments: readonly string[]): { subtype: string; action: AuditAction } {
  const n = segments.length;
  const operation = segments.find((s) => s.startsWith('$'));
  if (operation) return { subtype: operation, action: 'E' };
  if (n === 0) return method === 'POST' ? { subtype: 'batch', action: 'E' } : { subtype: 'capabilities', action: 'R' };
  if (segments.includes('_history')) {
    return n === 4 ? { subtype: 'vread', action: 'R' } : { subtype: `history-${n === 1 ? 'system' : n === 2 ? 'type' : 'instance'}`, action: 'R' };
  }
  if (n === 2 && segments[1] === '_search') return { subtype: 'search-type', action: 'E' };
  switch (method) {
    case 'GET':
      return n === 1 ? { subtype: 'search-type', action: 'E' } : { subtype: 'read', action: 'R' };
    case 'POST':
      return { subtype: 'create', action: 'C' };
    case 'PUT':
      return { subtype: 'update', action: 'U' };
    case 'PATCH':
      return { subtype: 'patch', action: 'U' };
    case 'DELETE':
      return { subtype: 'delete', action: 'D' };
    default:
      return { subtype: method.toLowerCase(), action: 'E' };
  }
}

export function outcomeOf(status: number): AuditOutcome {
  return status < 400 ? 0 : status < 500 ? 4 : 8;
}

function statusOf(err: unknown): number {
  if (err instanceof FhirError) return err.status;
  const status = (err as { statusCode?: number; status?: number } | undefined)?.statusCode ?? (err as { status?: number } | undefined)?.status;
  return typeof status === 'number' ? status : 500;
}

function who(auth: AuthContext | undefined): Pick<AuditRecord, 'clientId' | 'user' | 'organization' | 'tokenId' | 'purposeOfUse'> {
  if (!auth) return {};
  return { clientId: auth.clientId, user: auth.user, organization: auth.organization, tokenId: auth.tokenId, purposeOfUse: auth.purposeOfUse };
}

/**
 * The audit record of one FHIR interaction, from the request and how it ended. Kept apart from the HTTP
 * layer so that the engine's entry point can call it the same way for every transport.
 */
export function auditRecordFor(req: AuditedRequest, result: AuditedResult, requestId: string): AuditRecord {
  const status = 'response' in result ? result.response.status : statusOf(result.error);
  const { subtype, action } = interactionOf(req.method, req.segments);
  const type = req.segments[0];
  const subjects = 'response' in result ? subjectsOf(req.segments, result.response) : subjectsOf(req.segments);
  const glass = req.policy?.brokenGlass ?? [];
  return {
    kind: 'rest',
    subtype,
    action,
    outcome: outcomeOf(status),
    httpStatus: status,
    recorded: Date.now(),
    requestId,
    ...who(req.auth),
    resourceType: type && !type.startsWith('$') && !type.startsWith('_') ? type : undefined,
    query: req.rawQuery || undefined,
    subjects,
    breakTheGlass: glass.some((patient) => subjects.patients.has(patient)) || undefined,
  };
}

const METHOD_ACTIONS: Record<string, AuditAction> = { GET: 'R', HEAD: 'R', POST: 'E', PUT: 'U', PATCH: 'U', DELETE: 'D' };

/**
 * The audit record of a request to a route outside the FHIR REST surface (C-CDA import, /messages,
 * /participants, and any route added later), recorded by the HTTP layer's catch-all: the route pattern
 * as subtype (`POST /messages/:id/replay`), the action from the method, the outcome from the status.
 */
export function routeAuditRecord(method: string, route: string, auth: AuthContext | undefined, status: number, requestId: string, subjects?: AuditSubjects): AuditRecord {
  return {
    kind: 'rest',
    subtype: `${method} ${route}`,
    action: METHOD_ACTIONS[method] ?? 'E',
    outcome: outcomeOf(status),
    httpStatus: status,
    recorded: Date.now(),
    requestId,
    ...who(auth),
    subjects: subjects ?? { patients: new Map(), resources: [] },
  };
}

/** The patient and resources of a logged message (what its raw text and its results disclose). */
export function messageSubjects(message: LoggedMessage): AuditSubjects {
  const patient = message.patient?.replace(/^Patient\//, '');
  const patients = new Map<string, Map<string, number>>();
  if (patient) patients.set(patient, new Map());
  for (const ref of message.resources) {
    const type = ref.split('/')[0];
    if (patient && type !== 'Provenance') patients.get(patient)?.set(type, (patients.get(patient)?.get(type) ?? 0) + 1);
  }
  return { resources: message.resources.map((r) => r.replace(/\/_history\/.*$/, '')), patients };
}

/**
 * The audit record of a message received and applied (or refused) by the intake, e.g. HL7 v2 over MLLP:
 * the message log's row says from whom, what it wrote and for which patient. The message id is the request id.
 */
export function intakeAuditRecord(message: LoggedMessage): AuditRecord {
  return {
    kind: 'import',
    subtype: `${message.format} ${message.channel}`,
    action: 'C',
    outcome: message.status === 'processed' || message.status === 'duplicate' ? 0 : message.status === 'failed' || message.status === 'ignored' ? 4 : 8,
    httpStatus: message.status,
    recorded: Date.now(),
    requestId: message.id,
    participant: message.participantId,
    subjects: messageSubjects(message),
  };
}

/** How someone signed in or asked for a token: `token` (the token endpoint), `password`, `federated`. */
export interface LoginAttempt {
  method: 'token' | 'password' | 'federated';
  /** The client it was for (the one claimed, when refused). */
  clientId?: string;
  /** The user, when known (a refused password sign-in names the account tried, if it exists). */
  user?: AuthContext['user'];
  status: number;
  requestId: string;
  /** The access token's id, when one was issued. */
  tokenId?: string;
}

/** The audit record of a sign-in or token request: succeeded (with the token's id) or refused. */
export function loginAuditRecord(attempt: LoginAttempt): AuditRecord {
  return {
    kind: 'login',
    subtype: attempt.method,
    action: 'E',
    outcome: outcomeOf(attempt.status),
    httpStatus: attempt.status,
    recorded: Date.now(),
    requestId: attempt.requestId,
    clientId: attempt.clientId,
    user: attempt.user,
    tokenId: attempt.tokenId,
    subjects: { patients: new Map(), resources: [] },
  };
}

/**
 * The audit record of an operator's action from the command line (`tessera users disable`, `clients
 * clearance`, `messages show`, ...): who (the operating-system account), the command, and its target.
 */
export function operatorAuditRecord(command: string, target: string | undefined, operator: string): AuditRecord {
  return {
    kind: 'operator',
    subtype: command,
    action: command.endsWith(' show') || command.endsWith(' list') ? 'R' : 'E',
    outcome: 0,
    httpStatus: 'done',
    recorded: Date.now(),
    requestId: crypto.randomUUID(),
    clientId: 'tessera-cli',
    user: { id: `os:${operator}`, role: 'operator' },
    target,
    subjects: { patients: new Map(), resources: [] },
  };
}

/** A notification delivered (or refused by the receiver) to a subscriber: a disclosure to the subscription's participant. */
export interface NotificationDelivery {
  subscriptionId: string;
  channel: string;
  participantId: string;
  clientId: string;
  purposeOfUse?: string;
  /** delivered, failed, dead */
  status: string;
  /** The focus resources sent and the patients they are about. */
  resources: { reference: string; patientId?: string }[];
}

/** The audit record of one notification sent: who received what, about whom, through which subscription. */
export function notificationAuditRecord(delivery: NotificationDelivery): AuditRecord {
  const patients = new Map<string, Map<string, number>>();
  for (const r of delivery.resources) {
    if (!r.patientId) continue;
    const type = r.reference.split('/')[0];
    const counts = patients.get(r.patientId) ?? new Map<string, number>();
    counts.set(type, (counts.get(type) ?? 0) + 1);
    patients.set(r.patientId, counts);
  }
  return {
    kind: 'notification',
    subtype: delivery.channel,
    action: 'E',
    outcome: delivery.status === 'delivered' ? 0 : 4,
    httpStatus: delivery.status,
    recorded: Date.now(),
    requestId: crypto.randomUUID(),
    clientId: delivery.clientId,
    participant: delivery.participantId,
    purposeOfUse: delivery.purposeOfUse,
    resourceType: 'Subscription',
    target: `Subscription/${delivery.subscriptionId}`,
    subjects: { resources: delivery.resources.map((r) => r.reference), patients },
  };
}
