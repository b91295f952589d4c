import { auditRecordFor, type AuditedResult } from '../audit/audit-record.js';
import { auditLogIfOn } from '../audit/audit-attachment.js';
import { FhirAttribution } from '../participants/fhir-attribution.js';
import type { Repository } from '../store/repository.js';
import type { FhirRequest, FhirResponse } from './fhir-request.js';
import { dispatch } from './fhir-router.js';

/**
 * The engine's entry point for every caller from outside (HTTP today; the portal's API, CDS Hooks and
 * notification delivery tomorrow): a participant's writes are attributed like its messages, the access
 * policy decides inside `dispatch`, and the interaction's AuditEvent is committed before the answer is
 * returned, so no transport can answer a request unaudited.
 */
export class FhirEngine {
  private readonly attribution: FhirAttribution;

  constructor(readonly repo: Repository) {
    this.attribution = new FhirAttribution(repo);
  }

  /** Answers one interaction; `requestId` is the caller's id of it (X-Request-Id over HTTP), kept in its AuditEvent. */
  async handle(req: FhirRequest, requestId: string): Promise<FhirResponse> {
    let result: AuditedResult;
    try {
      const participant = await this.attribution.participantFor(req);
      result = { response: participant ? await this.attribution.dispatch(participant, req, dispatch) : await dispatch(this.repo, req) };
    } catch (error) {
      result = { error };
    }
    await auditLogIfOn(this.repo)?.record(auditRecordFor(req, result, requestId));
    if ('error' in result) throw result.error;
    return result.response;
  }
}
