import type { Resource } from '@medplum/fhirtypes';
import { requestFor } from '../engine/fhir-request.js';
import { dispatch } from '../engine/fhir-router.js';
import { FhirError } from '../fhir/outcome.js';
import { parseScopes } from '../security/scopes.js';
import type { AuthContext } from '../security/token-service.js';
import type { Repository } from '../store/repository.js';

/**
 * What a subscriber may see is what its participant's client may read: notifications are reads on the
 * participant's behalf, decided by the one access policy (scopes, consent, purpose, labels) the way a
 * FHIR read by that client would be. A participant without an active client may see nothing.
 */
export class SubscriberAccess {
  constructor(private readonly repo: Repository, private readonly baseUrl: string) {}

  /**
   * The access context a participant's notifications are read under now (undefined: none, nothing is
   * sent). Read for each batch, not remembered: a participant deactivated or a client disabled gets
   * nothing more from the next round on, as a disabled client's tokens stop at the next request.
   */
  async authOf(participantId: string): Promise<AuthContext | undefined> {
    const [row] = await this.repo.sql.query<{ organization_id: string; client_id: string; scope: string; purposes: string | null }>(
      `SELECT p.organization_id, c.id AS client_id, c.scope, c.purposes FROM participant p JOIN oauth_client c ON c.id = p.client_id
       WHERE p.id = ? AND p.active = 1 AND c.disabled = 0`,
      [participantId],
    );
    if (!row) return undefined;
    const purposes = row.purposes?.split(',').filter(Boolean) ?? [];
    return {
      clientId: row.client_id,
      scopes: parseScopes(row.scope),
      // Care coordination is treatment, unless the operator registered other purposes for the client.
      purposeOfUse: purposes.length && !purposes.includes('TREAT') ? purposes[0] : 'TREAT',
      organization: `Organization/${row.organization_id}`,
    };
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
