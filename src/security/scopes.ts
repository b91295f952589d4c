/** The FHIR interactions a SMART v2 scope grants: create, read, update, delete, search. */
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

export interface Scope {
  context: 'system' | 'user' | 'patient';
  resourceType: string; // '*' for all
  interactions: Set<Interaction>;
  /**
   * SMART v2 granular restriction (`patient/Observation.rs?category=...|laboratory`): search parameters
   * that every resource reached through this scope must match. Absent: the whole type.
   */
  restriction?: URLSearchParams;
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
  const [, context, resourceType, action, query] = m;
  let interactions: Interaction[];
  if (V1_ACTIONS[action]) {
    interactions = V1_ACTIONS[action];
  } else if (/^c?r?u?d?s?$/.test(action) && action.length) {
    interactions = action.split('') as Interaction[];
  } else {
    return undefined;
  }
  const scope: Scope = { context: context as Scope['context'], resourceType, interactions: new Set(interactions) };
  if (query !== undefined) {
    const restriction = new URLSearchParams(query.slice(1));
    // A restriction is a plain list of parameters on the scope's own type: no chains, _has or result
    // parameters, whose meaning would reach other types or the shape of the answer.
    const keys = [...restriction.keys()];
    if (resourceType === '*' || !keys.length || keys.some((k) => !/^[a-z][A-Za-z0-9-]*(:[a-z-]+)?$/.test(k))) {
      return undefined;
    }
    scope.restriction = restriction;
  }
  return scope;
}

export function parseScopes(text: string): Scope[] {
  return text
    .split(/\s+/)
    .filter(Boolean)
    .map(parseScope)
    .filter((s): s is Scope => !!s);
}

/**
 * True when `allowed` (a client's registered scopes) covers the requested scope: same context, the type
 * or `*`, every interaction; a restricted request is covered by an unrestricted or identically
 * restricted allowance, never the other way round.
 */
export function scopeAllowed(requested: string, allowed: Scope[]): boolean {
  const want = parseScope(requested);
  if (!want) {
    return false;
  }
  const sameRestriction = (a: Scope) => !a.restriction || (!!want.restriction && a.restriction.toString() === want.restriction.toString());
  return [...want.interactions].every((i) =>
    allowed.some(
      (a) => a.context === want.context && (a.resourceType === '*' || a.resourceType === want.resourceType) && a.interactions.has(i) && sameRestriction(a),
    ),
  );
}
