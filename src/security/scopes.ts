import { forbidden } from '../fhir/outcome.js';

/** The FHIR interactions a SMART v2 scope grants: create, read, update, delete, search. */
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

export interface Scope {
  context: 'system' | 'user' | 'patient';
  resourceType: string; // '*' for all
  interactions: Set<Interaction>;
}

const V1_ACTIONS: Record<string, Interaction[]> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};

/**
 * Parses SMART scopes, v2 (`system/Patient.rs`, `system/*.cruds`) and v1 (`system/Patient.read`,
 * `system/*.*`). Scopes that are not resource scopes (openid, launch, ...) are ignored here. Returns
 * undefined for a malformed resource scope so that the token endpoint can reject it.
 */
export function parseScope(text: string): Scope | undefined | null {
  const m = /^(system|user|patient)\/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$/.exec(text);
  if (!m) {
    return /^(system|user|patient)\//.test(text) ? undefined : null;
  }
  const [, context, resourceType, action] = m;
  let interactions: Interaction[];
  if (V1_ACTIONS[action]) {
    interactions = V1_ACTIONS[action];
  } else if (/^c?r?u?d?s?$/.test(action) && action.length) {
    interactions = action.split('') as Interaction[];
  } else {
    return undefined;
  }
  return { context: context as Scope['context'], resourceType, interactions: new Set(interactions) };
}

export function parseScopes(text: string): Scope[] {
  return text
    .split(/\s+/)
    .filter(Boolean)
    .map(parseScope)
    .filter((s): s is Scope => !!s);
}

/** True when `granted` (a client's allowed scope string) covers the requested scope. */
export function scopeAllowed(requested: string, allowed: Scope[]): boolean {
  const want = parseScope(requested);
  if (!want) {
    return false;
  }
  return [...want.interactions].every((i) =>
    allowed.some((a) => a.context === want.context && (a.resourceType === '*' || a.resourceType === want.resourceType) && a.interactions.has(i)),
  );
}

export function permits(scopes: Scope[], resourceType: string, interaction: Interaction): boolean {
  return scopes.some((s) => (s.resourceType === '*' || s.resourceType === resourceType) && s.interactions.has(interaction));
}

const INTERACTION_NAMES: Record<Interaction, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

export function requirePermission(scopes: Scope[], resourceType: string, interaction: Interaction): void {
  if (!permits(scopes, resourceType, interaction)) {
    throw forbidden(`The access token's scopes do not allow ${INTERACTION_NAMES[interaction]} on ${resourceType}`);
  }
}
