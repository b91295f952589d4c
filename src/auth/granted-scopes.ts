import { parseScope, parseScopes, scopeAllowed } from '../security/scopes.js';

/** Scopes that are not about resources: granted when the client is registered with them. */
export const NON_RESOURCE_SCOPES = ['openid', 'fhirUser', 'profile', 'launch/patient', 'offline_access', 'online_access'];

/**
 * The scopes a user's authorization grants: requested ∩ what the client may ask for ∩ what the role
 * allows. Users never get `system/` scopes; a patient gets only `patient/` scopes; `patient/` scopes need
 * a patient in the launch context (without one they would name no compartment) and are dropped otherwise.
 */
export function grantedScopes(requested: string, clientScope: string, role: string, hasPatientContext: boolean): string[] {
  const registered = clientScope.split(/\s+/).filter(Boolean);
  const allowed = parseScopes(clientScope);
  return requested
    .split(/\s+/)
    .filter(Boolean)
    .filter((s) => {
      const parsed = parseScope(s);
      if (parsed === null) {
        return NON_RESOURCE_SCOPES.includes(s) && registered.includes(s);
      }
      if (!parsed || !scopeAllowed(s, allowed) || parsed.context === 'system') return false;
      if (role === 'patient' && parsed.context !== 'patient') return false;
      return parsed.context !== 'patient' || hasPatientContext;
    })
    .filter((s, i, all) => all.indexOf(s) === i);
}

/** Whether any requested scope could be granted to some user of the client (checked before sign-in). */
export function anyGrantable(requested: string, clientScope: string): boolean {
  return grantedScopes(requested, clientScope, 'clinician', true).length > 0 || grantedScopes(requested, clientScope, 'patient', true).length > 0;
}
