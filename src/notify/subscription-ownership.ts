import type { RowRestriction } from '../engine/access-policy.js';
import type { RestrictionSource } from '../engine/request-policy.js';
import type { AuthContext } from '../security/token-service.js';

/**
 * Subscriptions are their participant's own: a practice's Subscription names its endpoint, its roster and
 * what it watches for, which no other participant may read, search or count, whatever its scopes. A
 * caller acting for a participant (its client, or a user at its Organization) reaches the Subscriptions
 * of that participant only (notify_subscription.participant_id, set when the Subscription is written);
 * a client of no participant and a user of no Organization (the exchange's own tools) reach them all.
 */
export const subscriptionOwnershipSource: RestrictionSource = async (_repo, auth) => new SubscriptionOwnership(auth);

class SubscriptionOwnership implements RowRestriction {
  constructor(private readonly auth: AuthContext) {}

  rows(type: string, alias: string) {
    if (type !== 'Subscription') return undefined;
    const organization = this.auth.organization?.replace(/^Organization\//, '') ?? null;
    const acting = `(SELECT p.id FROM participant p WHERE p.client_id = ? OR p.organization_id = ?)`;
    return {
      sql: `(NOT EXISTS ${acting} OR EXISTS (SELECT 1 FROM notify_subscription ns WHERE ns.id = ${alias}.id AND ns.participant_id IN ${acting}))`,
      params: [this.auth.clientId, organization, this.auth.clientId, organization],
    };
  }
}
