import type { Bundle, Resource } from '@medplum/fhirtypes';
import { FhirError } from '../fhir/outcome.js';
import { recordMessageProvenance, stampMessageSource, versionReference, writtenVersions } from '../ingest/message-provenance.js';
import { MessageLog } from '../messages/message-log.js';
import { withWriteOnlyHidden } from '../notify/write-only-in-requests.js';
import type { FhirRequest, FhirResponse } from '../engine/fhir-request.js';
import type { Repository } from '../store/repository.js';
import { newResourceId } from '../store/resource-id.js';
import { participantForClient, type Participant } from './participants.js';

type Dispatch = (repo: Repository, req: FhirRequest) => Promise<FhirResponse>;

/** How long a client's participant (or its absence) is remembered: registrations change rarely. */
const CACHE_MS = 60_000;
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * FHIR traffic from a participant's OAuth client goes through the same pipeline as its HL7 v2 messages:
 * the request is logged raw in the message log first, every resource it writes carries
 * `meta.source = urn:tessera:message:{id}`, and the writes, one Provenance naming the participant and
 * the log's `processed` mark commit together. Requests from other clients (operators, readers) are not
 * touched.
 */
export class FhirAttribution {
  private readonly cache = new Map<string, { participant?: Participant; at: number }>();

  constructor(private readonly repo: Repository) {}

  /** The participant to attribute this request to, if it is a write by a participant's client. */
  async participantFor(req: FhirRequest): Promise<Participant | undefined> {
    if (!req.auth || !WRITES.has(req.method)) {
      return undefined;
    }
    const cached = this.cache.get(req.auth.clientId);
    if (cached && Date.now() - cached.at < CACHE_MS) {
      return cached.participant;
    }
    const participant = await participantForClient(this.repo, req.auth.clientId);
    if (this.cache.size > 1000) this.cache.clear();
    this.cache.set(req.auth.clientId, { participant, at: Date.now() });
    return participant;
  }

  async dispatch(participant: Participant, req: FhirRequest, dispatch: Dispatch, channel = 'http'): Promise<FhirResponse> {
    const id = newResourceId();
    const log = new MessageLog(this.repo.sql);
    const bundle = isBundle(req.body) ? req.body : undefined;
    const messageType = bundle ? `Bundle^${bundle.type ?? ''}` : `${req.method}^${req.segments[0] ?? ''}`;
    const path = req.segments.join('/');
    // Raw, but for a Subscription's write-only channel values (signing secret, headers), which no reader of the log may see.
    const body = withWriteOnlyHidden({ method: req.method, path, body: req.body });
    await log.received({ id, participantId: participant.id, channel, format: 'fhir', messageType, raw: JSON.stringify({ method: req.method, path, query: req.rawQuery, body }), receivedAt: Date.now() });
    stampMessageSource(req.body, id);
    try {
      return await this.repo.transaction(async (tx) => {
        const res = await dispatch(tx, req);
        const written = writtenBy(res);
        if (written.length) {
          await recordMessageProvenance(tx, written, participant, id, `FHIR ${messageType}`);
        }
        await new MessageLog(tx.sql).finish(id, 'processed', { resources: written, patient: written.find((w) => w.startsWith('Patient/'))?.replace(/\/_history\/.*$/, '') });
        return res;
      });
    } catch (err) {
      await log.finish(id, 'failed', { error: err instanceof FhirError ? `${err.status}: ${err.message}` : String((err as Error).message ?? err) });
      throw err;
    }
  }
}

function isBundle(body: unknown): body is Bundle {
  return !!body && typeof body === 'object' && (body as Resource).resourceType === 'Bundle';
}

/** The versions a response reports as written: a Bundle's entries', or a single write's. */
function writtenBy(res: FhirResponse): string[] {
  if (res.body?.resourceType === 'Bundle') {
    return writtenVersions(res.body as Bundle);
  }
  const body = res.body as Resource | undefined;
  const single = res.status < 300 && res.etag ? versionReference(res.location ?? (body?.id ? `${body.resourceType}/${body.id}/_history/${body.meta?.versionId}` : undefined)) : undefined;
  return single ? [single] : [];
}
