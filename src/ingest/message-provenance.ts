import type { Bundle, Provenance, Resource } from '@medplum/fhirtypes';
import type { Participant } from '../participants/participants.js';
import type { Repository } from '../store/repository.js';

/** The identifier system under which Provenance and meta.source name a logged message. */
export const MESSAGE_SYSTEM = 'urn:tessera:message';

/** meta.source on what a message writes: the resource it carries, or each entry's resource of a Bundle. */
export function stampMessageSource(body: unknown, messageId: string): void {
  const source = `${MESSAGE_SYSTEM}:${messageId}`;
  const stamp = (r: Resource | undefined) => {
    if (r && typeof r === 'object' && typeof r.resourceType === 'string') r.meta = { ...r.meta, source };
  };
  const resource = body as Resource | undefined;
  if (resource?.resourceType === 'Bundle') ((resource as Bundle).entry ?? []).forEach((e) => stamp(e.resource));
  else stamp(resource);
}

/** A stored version's reference ("Patient/1/_history/2") from a Location, whatever its base. */
export function versionReference(location: string | undefined): string | undefined {
  const m = location && /([A-Z][A-Za-z]+\/[^/]+\/_history\/[^/]+)$/.exec(location);
  return m ? m[1] : undefined;
}

/** Versions a transaction or batch response reports as written; a create that found its resource already there wrote nothing. */
export function writtenVersions(response: Bundle): string[] {
  return (response.entry ?? [])
    .filter((e) => e.response?.status.startsWith('201') || (e.response?.status.startsWith('200') && !!e.response.etag))
    .map((e) => versionReference(e.response?.location))
    .filter((l): l is string => !!l);
}

/**
 * Stores the Provenance of what one inbound message wrote, under an id derived from the message's, so
 * that a replay of the message updates it instead of adding a second one. Returns its version reference.
 */
export async function recordMessageProvenance(tx: Repository, written: string[], participant: Participant, messageId: string, what: string): Promise<string> {
  const { resource } = await tx.update(messageProvenance(written, participant, messageId, what));
  return `Provenance/${resource.id}/_history/${resource.meta?.versionId}`;
}

/** The Provenance of what one inbound message wrote: the participant as author, the logged message as source. */
export function messageProvenance(written: string[], participant: Participant, messageId: string, what: string): Provenance {
  return {
    resourceType: 'Provenance',
    id: `message-${messageId}`,
    target: written.map((reference) => ({ reference })),
    recorded: new Date().toISOString(),
    activity: { text: what },
    agent: [
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }] },
        who: { reference: `Organization/${participant.organizationId}`, display: participant.name },
      },
    ],
    entity: [{ role: 'source', what: { identifier: { system: MESSAGE_SYSTEM, value: messageId }, display: `${what} from ${participant.name}` } }],
  };
}
