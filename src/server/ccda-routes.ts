import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Binary, DocumentReference, OperationOutcome, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest, fhirError, forbidden } from '../fhir/outcome.js';
import type { CcdaImportResult, CcdaIntake } from '../ingest/ccda-intake.js';
import { participantById, participantForClient, type Participant } from '../participants/participants.js';
import { policyFor } from '../engine/request-policy.js';
import type { AuthContext } from '../security/token-service.js';
import type { Repository } from '../store/repository.js';
import { recordIntake } from '../audit/intake-audit.js';

/** Media types a C-CDA document is sent as. */
export const CDA_MEDIA_TYPES = ['application/xml', 'text/xml', 'application/cda+xml', 'application/hl7-cda+xml', 'application/hl7-v3+xml'];

/**
 * `POST /fhir/$import-ccda`: a C-CDA document (the XML as the body; or a Parameters with a `document`
 * attachment, a DocumentReference whose first attachment holds it, or a Binary) from a participant's client, or from an operator on a participant's behalf
 * (`?participant=ID`). Answers a Parameters naming the logged message, the patient, the
 * DocumentReference and every resource written, with the warnings as an OperationOutcome; a document
 * that cannot be read (unsafe XML, not CDA, no patient) is a 400 with the reason, and stays in the log.
 */
export function registerCcdaRoutes(app: FastifyInstance, repo: Repository, ccda: CcdaIntake, maxBytes: number, authenticate: (req: FastifyRequest) => Promise<AuthContext>): void {
  app.post('/fhir/$import-ccda', { bodyLimit: maxBytes }, async (req, reply) => {
    const auth = await authenticate(req);
    // A document writes whatever it holds about its patient: the importer's scopes must reach every type.
    // No clearance is needed: a source sends its own sensitive data, and the answer names what it sent.
    const policy = await policyFor(repo, auth);
    for (const interaction of ['c', 'u'] as const) policy.requireUnrestricted('*', interaction, 'Importing a C-CDA document');
    const participant = await sender(repo, auth, (req.query as Record<string, string | undefined>).participant);
    const result = await ccda.import(documentText(req.body), participant, 'http');
    await recordIntake(repo, result.messageId);
    if (result.status === 'failed') {
      throw fhirError(result.rejected ? 400 : 422, result.rejected ? 'invalid' : 'processing', `${result.error} (message ${result.messageId})`);
    }
    return reply.type('application/fhir+json; charset=utf-8').send(answer(result));
  });
}

/** A participant's own client sends as that participant; an operator names the participant it acts for. */
async function sender(repo: Repository, auth: AuthContext, named: string | undefined): Promise<Participant> {
  const own = await participantForClient(repo, auth.clientId);
  if (own) {
    if (named && named !== own.id) throw forbidden('A participant client sends documents as its own participant only');
    return own;
  }
  if (!named) {
    throw forbidden('Documents are accepted from registered participants only: send with a participant\'s client, or name the participant (?participant=ID)');
  }
  const participant = await participantById(repo, named);
  if (!participant?.active) throw badRequest(`No active participant ${named}`);
  return participant;
}

function documentText(body: unknown): string {
  if (typeof body === 'string' && body.trim()) return body;
  const resource = body as Parameters | DocumentReference | Binary | undefined;
  // A DocumentReference or Binary carrying the document, as a FHIR client holding one would send it.
  const attached = resource?.resourceType === 'DocumentReference' ? resource.content?.[0]?.attachment?.data : resource?.resourceType === 'Binary' ? resource.data : undefined;
  if (attached) return Buffer.from(attached, 'base64').toString('utf8');
  const parameters = resource as Parameters | undefined;
  if (parameters?.resourceType === 'Parameters') {
    const document = parameters.parameter?.find((p) => p.name === 'document');
    if (document?.valueAttachment?.data) return Buffer.from(document.valueAttachment.data, 'base64').toString('utf8');
    if (document?.valueString) return document.valueString;
  }
  throw badRequest(`Send the C-CDA document as the body (${CDA_MEDIA_TYPES.join(', ')}), or a Parameters with a "document" attachment, or a DocumentReference or Binary holding it (base64)`);
}

function answer(result: CcdaImportResult): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'message', valueString: result.messageId },
    { name: 'status', valueCode: result.status },
  ];
  if (result.patient) parameter.push({ name: 'patient', valueReference: { reference: result.patient } });
  if (result.documentReference) parameter.push({ name: 'documentReference', valueReference: { reference: result.documentReference } });
  for (const reference of result.resources) parameter.push({ name: 'resource', valueReference: { reference } });
  const outcome: OperationOutcome = {
    resourceType: 'OperationOutcome',
    issue: result.warnings.length
      ? result.warnings.map((diagnostics) => ({ severity: 'warning', code: 'incomplete', diagnostics }))
      : [{ severity: 'information', code: 'informational', diagnostics: result.status === 'duplicate' ? 'The same document was imported before; nothing was applied again' : 'Every section converted' }],
  };
  parameter.push({ name: 'outcome', resource: outcome });
  return { resourceType: 'Parameters', parameter };
}
