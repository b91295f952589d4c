import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { fhirError, forbidden, notFound } from '../../fhir/outcome.js';
import { BTG_MINUTES, breakTheGlass, endBreakTheGlass, markReviewed, reviewList, type BreakTheGlassGrant } from '../../consent/break-the-glass.js';
import type { Repository } from '../../store/repository.js';
import { policyOf, requireReachable, type FhirRequest, type FhirResponse } from '../fhir-request.js';
import { OperationInput } from '../operation-input.js';
import { personRecords } from '../request-policy.js';

/**
 * POST Patient/{id}/$break-the-glass (parameter `reason`, optional `minutes` up to BTG_MINUTES): a
 * signed-in clinician declares an emergency and, for that long, reads the person's record past consents
 * and security labels. The patient must be one the clinician's scopes reach at all (break-the-glass
 * lifts privacy restrictions, not scopes). With `end=true` instead, the clinician's running grants for
 * the person end now.
 */
export async function declareBreakTheGlass(repo: Repository, patientId: string, req: FhirRequest): Promise<FhirResponse> {
  if (req.method !== 'POST') {
    throw fhirError(405, 'not-supported', '$break-the-glass takes POST');
  }
  const policy = policyOf(req);
  policy.require('Patient', 'r');
  // Outside the scopes' reach (another patient context, a granular restriction) it is as if it did not exist.
  await requireReachable(repo, req, 'Patient', patientId, 'r', { scopesOnly: true });
  if (!(await repo.exists('Patient', patientId))) {
    throw notFound(`Patient/${patientId} not found`);
  }
  const input = OperationInput.from(req);
  const auth = req.auth ?? { clientId: 'system', scopes: [] };
  if (input.boolean('end')) {
    if (!auth.user) throw forbidden('Only the signed-in user who broke the glass may end it');
    const ended = await endBreakTheGlass(repo.sql, `user:${auth.user.id}`, await personRecords(repo, patientId));
    return { status: 200, body: { resourceType: 'Parameters', parameter: [{ name: 'ended', valueInteger: ended }] } satisfies Parameters };
  }
  const minutes = input.integer('minutes', 1, BTG_MINUTES) ?? BTG_MINUTES;
  const grant = await breakTheGlass(repo.sql, auth, patientId, await personRecords(repo, patientId), input.required('reason'), minutes);
  const parameter: ParametersParameter[] = [
    { name: 'grant', valueString: grant.id },
    { name: 'expires', valueInstant: new Date(grant.expiresAt).toISOString() },
    { name: 'minutes', valueInteger: minutes },
  ];
  return { status: 200, body: { resourceType: 'Parameters', parameter } satisfies Parameters };
}

/**
 * Patient/$break-the-glass-review: privacy officers list grants (GET; `status=unreviewed` or `all`) and
 * mark one reviewed (POST, parameter `grant`). A system client with every Patient in reach may too.
 */
export async function breakTheGlassReview(repo: Repository, req: FhirRequest): Promise<FhirResponse> {
  const auth = req.auth;
  policyOf(req).requirePrivacyOfficer('Patient', 'r', 'The break-the-glass review list');
  const input = OperationInput.from(req);
  if (req.method === 'POST') {
    const reviewer = auth?.user ? `user:${auth.user.id}` : `client:${auth?.clientId ?? 'system'}`;
    if (!(await markReviewed(repo.sql, input.required('grant'), reviewer))) {
      throw notFound('No unreviewed grant with that id');
    }
    return { status: 200, body: { resourceType: 'Parameters', parameter: [{ name: 'reviewed', valueBoolean: true }] } };
  }
  if (req.method !== 'GET') {
    throw fhirError(405, 'not-supported', '$break-the-glass-review takes GET or POST');
  }
  const status = input.string('status') ?? 'unreviewed';
  const grants = await reviewList(repo.sql, { unreviewedOnly: status !== 'all', limit: input.integer('_count', 1, 1000) ?? 100 });
  return { status: 200, body: { resourceType: 'Parameters', parameter: grants.map(grantParameter) } };
}

function grantParameter(g: BreakTheGlassGrant): ParametersParameter {
  const part: ParametersParameter[] = [
    { name: 'id', valueString: g.id },
    { name: 'holder', valueString: g.holder },
    { name: 'patient', valueReference: { reference: `Patient/${g.patientId}` } },
    { name: 'reason', valueString: g.reason },
    { name: 'granted', valueInstant: new Date(g.grantedAt).toISOString() },
    { name: 'expires', valueInstant: new Date(g.expiresAt).toISOString() },
  ];
  if (g.reviewedAt !== undefined) {
    part.push({ name: 'reviewed', valueInstant: new Date(g.reviewedAt).toISOString() }, { name: 'reviewedBy', valueString: g.reviewedBy as string });
  }
  return { name: 'grant', part };
}
