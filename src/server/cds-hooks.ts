import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { badRequest, unauthorized } from '../fhir/outcome.js';
import type { FhirEngine } from '../engine/fhir-engine.js';
import { requestFor, type FhirResponse } from '../engine/fhir-request.js';
import { duplicateOrderCards } from '../record/duplicate-orders.js';
import { orderLookups } from '../record/order-lookups.js';
import { testEquivalences } from '../record/test-equivalences.js';
import { CdsClientVerifier } from '../security/cds-client-jwt.js';
import type { ClientRateLimiter } from './client-rate-limit.js';
import type { AuthContext, TokenService } from '../security/token-service.js';
import { decodeProtectedHeader } from 'jose';
import type { SqlExecutor } from '../store/database.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** The discovery extension listing the duplicate-test equivalences in force. */
export const TEST_EQUIVALENCES_EXTENSION = 'dev.tessera.test-equivalences';

/** The services this exchange offers (CDS Hooks 2.0 discovery). */
export const CDS_SERVICES = [
  {
    hook: 'order-select',
    id: 'duplicate-orders-select',
    title: 'Duplicate tests and therapy (community record)',
    description: 'Warns when a selected draft order repeats a test resulted or pending at any participant within its look-back window, or a medication already active.',
    prefetch: { patient: 'Patient/{{context.patientId}}' },
  },
  {
    hook: 'order-sign',
    id: 'duplicate-orders-sign',
    title: 'Duplicate tests and therapy at signing (community record)',
    description: 'Warns when a draft order about to be signed repeats a test resulted or pending at any participant within its look-back window, or a medication already active.',
    prefetch: { patient: 'Patient/{{context.patientId}}' },
  },
];

/**
 * CDS Hooks over HTTP: `GET /cds-services` (discovery) and `POST /cds-services/{id}`. The CDS client
 * authenticates with its signed JWT (security/cds-client-jwt.ts) and the service reads the person's merged
 * record through the FHIR engine as that client, so the access policy and the audit apply as to any read.
 */
export function registerCdsHooks(
  app: FastifyInstance,
  options: { db: SqlExecutor; engine: FhirEngine; tokens: TokenService; origin: () => string; audited: (req: FastifyRequest) => void; limiter?: ClientRateLimiter },
): void {
  const verifier = new CdsClientVerifier(options.db);
  // Tessera's own apps (the portal) are CDS clients too: they call with the signed-in user's access
  // token, so the service reads as that user (their role, purpose, consent), not as a system client.
  const callerOf = async (authorization: string | undefined, audience: string): Promise<{ auth: AuthContext; ownApp: boolean }> => {
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    let typ: string | undefined;
    try {
      typ = token ? decodeProtectedHeader(token).typ : undefined;
    } catch {
      typ = undefined;
    }
    if (typ !== 'at+jwt') return { auth: await verifier.verify(authorization, audience), ownApp: false };
    try {
      return { auth: await options.tokens.verify(token as string), ownApp: true };
    } catch {
      throw unauthorized('The access token is invalid or expired');
    }
  };
  // Each service names, as a discovery extension (CDS Hooks 2.0 `extension`), the tests it recognises as
  // duplicates of each other and their look-back windows: the community's list (`tessera record
  // equivalences`), so a client (the portal) offers the tests the service knows, not a list of its own.
  app.get('/cds-services', async () => {
    const equivalences = await testEquivalences(options.db);
    return { services: CDS_SERVICES.map((s) => ({ ...s, extension: { [TEST_EQUIVALENCES_EXTENSION]: equivalences } })) };
  });
  app.post('/cds-services/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const service = CDS_SERVICES.find((s) => s.id === id);
    if (!service) return reply.status(404).send({ error: `No CDS service ${id}` });
    const { auth, ownApp } = await callerOf(req.headers.authorization, `${options.origin()}/cds-services/${id}`);
    // The engine's reads below record their own AuditEvents (who read what of whom, for this call).
    options.audited(req);
    // The route is public (the CDS client's JWT is checked here, not by the bearer hook): its rate limit too.
    const throttled = options.limiter?.throttle(auth.clientId);
    if (throttled) {
      reply.header('retry-after', String(throttled.retryAfter));
      throw throttled.error;
    }
    const body = req.body as any;
    if (!body || typeof body !== 'object' || body.hook !== service.hook || typeof body.hookInstance !== 'string' || !body.context || typeof body.context.patientId !== 'string') {
      throw badRequest(`A ${service.hook} request needs hook "${service.hook}", a hookInstance and context.patientId`);
    }
    const drafts = draftOrders(body.context, service.hook);
    const call = async (url: string): Promise<FhirResponse> => options.engine.handle(requestFor('GET', url, { baseUrl: `${options.origin()}/fhir`, auth }), req.id);
    // Only a registered CDS client (an EHR) names a FHIR server to fetch its patient from: a caller with
    // an access token of ours names the exchange's own Patient, and is not let make the server fetch URLs.
    const person = await personOf(ownApp ? { ...body, fhirServer: undefined, fhirAuthorization: undefined } : body, call);
    if (!person || !drafts.length) return { cards: [] };
    const equivalences = await testEquivalences(options.db);
    // Only what the drafts could repeat: index lookups by code and date over the merged record, not all of it.
    const record: any[] = [];
    for (const url of orderLookups(drafts, equivalences, person)) {
      const res = await call(url);
      record.push(...(((res.rawBody ? JSON.parse(res.rawBody) : res.body) as Bundle).entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource));
    }
    return { cards: duplicateOrderCards(drafts, record, equivalences) };
  });
}

/** The draft orders the hook is about: order-select's selections among its drafts; order-sign's drafts. */
function draftOrders(context: any, hook: string): any[] {
  const drafts = ((context.draftOrders as Bundle | undefined)?.entry ?? []).map((e) => e.resource as any).filter(Boolean);
  if (hook !== 'order-select' || !Array.isArray(context.selections)) return drafts;
  const selected = new Set<string>(context.selections);
  return drafts.filter((r) => selected.has(`${r.resourceType}/${r.id}`));
}

/**
 * The exchange's record of the EHR's patient: the EHR's Patient (prefetched, or read from its FHIR
 * server with the authorization it passed) is found here by its identifiers, then its enterprise
 * record; a client without prefetch or FHIR server names the exchange's own Patient id.
 */
async function personOf(body: any, call: (url: string) => Promise<FhirResponse>): Promise<string | undefined> {
  let patient: Patient | undefined = body.prefetch?.patient ?? undefined;
  if (!patient && typeof body.fhirServer === 'string' && /^https?:\/\//.test(body.fhirServer)) {
    const token = body.fhirAuthorization?.access_token;
    // The EHR's server unreachable: its patient cannot be told, and no card is better than a wrong one.
    try {
      const res = await fetch(`${body.fhirServer.replace(/\/$/, '')}/Patient/${encodeURIComponent(body.context.patientId)}`, {
        headers: { accept: 'application/fhir+json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) return undefined;
      patient = (await res.json()) as Patient;
    } catch {
      return undefined;
    }
  }
  const found = async (url: string): Promise<string | undefined> => {
    try {
      const res = await call(url);
      return (res.body as Bundle | undefined)?.entry?.[0]?.resource?.id;
    } catch {
      return undefined;
    }
  };
  let source: string | undefined;
  if (patient) {
    for (const i of patient.identifier ?? []) {
      if (i.system && i.value) source = await found(`Patient?identifier=${encodeURIComponent(`${i.system}|${i.value}`)}&_count=1`);
      if (source) break;
    }
    if (!source) return undefined;
  } else {
    source = body.context.patientId;
  }
  return (await found(`Patient?link=Patient/${source}&_count=1`)) ?? source;
}
