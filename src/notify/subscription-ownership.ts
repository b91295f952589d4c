import type { RowRestriction } from '../engine/access-policy.js';
import type { RestrictionSource } from '../engine/request-policy.js';
import type { AuthContext } from '../security/token-service.js';

/**
 * Subscriptions are their participant's own: a practice's Subscription names its endpoint, its roster and
 * what it watches for, which no other participant may read, search or count, whatever its scopes. A
 * caller acting for a participant (its client, or a user at its Organization) reaches the Subscriptions
 * of that participant only (notify_subscription.participant_id, set when the Subscription is written);
 * the exchange's own people (users with an operator role) and backend clients of no participant (its own
 * tools) reach them all; any other user (every user has an Organization) reaches only their
 * Organization's participant's.
 */
export const subscriptionOwnershipSource: RestrictionSource = async (_repo, auth) => (auth.user && OPERATOR_ROLES.has(auth.user.role) ? undefined : new SubscriptionOwnership(auth));

/** Roles of the exchange's own staff, who look after every participant's interfaces (docs/governance.md). */
const OPERATOR_ROLES: ReadonlySet<string> = new Set(['admin', 'interface-analyst']);

class SubscriptionOwnership implements RowRestriction {
  constructor(private readonly auth: AuthContext) {}

  rows(type: string, alias: string) {
    if (type !== 'Subscription') return undefined;
    const organization = this.auth.organization?.replace(/^Organization\//, '') ?? null;
    const acting = `(SELECT p.id FROM participant p WHERE p.client_id = ? OR p.organization_id = ?)`;
    const own = `EXISTS (SELECT 1 FROM notify_subscription ns WHERE ns.id = ${alias}.id AND ns.participant_id IN ${acting})`;
    if (this.auth.user) return { sql: own, params: [this.auth.clientId, organization] };
    return { sql: `(NOT EXISTS ${acting} OR ${own})`, params: [this.auth.clientId, organization, this.auth.clientId, organization] };
  }
}
