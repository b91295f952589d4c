import type { Resource } from '@medplum/fhirtypes';
import { requestFor } from '../engine/fhir-request.js';
import { dispatch } from '../engine/fhir-router.js';
import { FhirError } from '../fhir/outcome.js';
import { participantById } from '../participants/participants.js';
import { findClient } from '../security/clients.js';
import { parseScopes } from '../security/scopes.js';
import type { AuthContext } from '../security/token-service.js';
import type { Repository } from '../store/repository.js';

/** How long a participant's access (its client's scopes and purposes) is remembered: registrations change rarely. */
const CACHE_MS = 30_000;

/**
 * What a subscriber may see is what its participant's client may read: notifications are reads on the
 * participant's behalf, decided by the one access policy (scopes, consent, purpose, labels) the way a
 * FHIR read by that client would be. A participant without an active client may see nothing.
 */
export class SubscriberAccess {
  private readonly cache = new Map<string, { auth?: AuthContext; at: number }>();

  constructor(private readonly repo: Repository, private readonly baseUrl: string) {}

  /** The access context a participant's notifications are read under (undefined: none, nothing is sent). */
  async authOf(participantId: string): Promise<AuthContext | undefined> {
    const cached = this.cache.get(participantId);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.auth;
    const participant = await participantById(this.repo, participantId);
    const client = participant?.active && participant.clientId ? await findClient(this.repo.sql, participant.clientId) : undefined;
    const auth: AuthContext | undefined =
      client && !client.disabled
        ? {
            clientId: client.id,
            scopes: parseScopes(client.scope),
            // Care coordination is treatment, unless the operator registered other purposes for the client.
            purposeOfUse: client.purposes?.length && !client.purposes.includes('TREAT') ? client.purposes[0] : 'TREAT',
            organization: `Organization/${participant?.organizationId}`,
          }
        : undefined;
    this.cache.set(participantId, { auth, at: Date.now() });
    return auth;
  }

  /**
   * The resource (at `version`, the one the event is about, when given) as the participant may read it
   * now, or undefined when the policy withholds it (or it is gone).
   */
  async read(auth: AuthContext, type: string, id: string, version?: string): Promise<Resource | undefined> {
    try {
      const res = await dispatch(this.repo, requestFor('GET', `${type}/${id}${version ? `/_history/${version}` : ''}`, { baseUrl: this.baseUrl, auth }));
      return res.body ?? (res.rawBody ? (JSON.parse(res.rawBody) as Resource) : undefined);
    } catch (err) {
      if (err instanceof FhirError && err.status < 500) return undefined;
      throw err;
    }
  }
}
