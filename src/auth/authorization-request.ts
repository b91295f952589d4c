import { findClient, type OAuthClient } from '../security/clients.js';
import { parseScope } from '../security/scopes.js';
import type { SqlExecutor } from '../store/database.js';
import { anyGrantable } from './granted-scopes.js';
import { OAuthError } from './oauth-error.js';
import { isValidCodeChallenge } from './pkce.js';
import { parsePurposeOfUse, purposeRefusal } from './purpose-of-use.js';

/** A validated SMART App Launch authorization request (standalone launch). */
export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string;
  codeChallenge: string;
  nonce?: string;
  purposeOfUse?: string;
}

/**
 * An error that must not be sent to the redirect URI because the client or the URI itself is not
 * trusted (RFC 6749 §4.1.2.1): shown to the user instead.
 */
export class UntrustedRedirectError extends Error {}

/** An error sent back to the client's redirect URI with `state`. */
export class RedirectableError extends OAuthError {
  constructor(
    readonly redirectUri: string,
    readonly state: string | undefined,
    error: string,
    description: string,
  ) {
    super(302, error, description);
  }
}

export async function validateAuthorizationRequest(db: SqlExecutor, params: URLSearchParams, fhirBaseUrl: string): Promise<{ request: AuthorizationRequest; client: OAuthClient }> {
  const get = (name: string) => params.get(name) ?? undefined;
  const clientId = get('client_id');
  const client = clientId ? await findClient(db, clientId) : undefined;
  if (!client || client.disabled) {
    throw new UntrustedRedirectError('Unknown or disabled client');
  }
  const redirectUri = get('redirect_uri');
  if (!redirectUri || !client.redirectUris.includes(redirectUri)) {
    throw new UntrustedRedirectError('The redirect_uri is not registered for this client');
  }
  const state = get('state');
  const fail = (error: string, description: string) => new RedirectableError(redirectUri, state, error, description);
  if (get('response_type') !== 'code') throw fail('unsupported_response_type', 'response_type must be code');
  // SMART requires state (CSRF protection on the client side) and at least 122 bits in it.
  if (!state) throw fail('invalid_request', 'state is required');
  if (get('code_challenge_method') !== 'S256' || !isValidCodeChallenge(get('code_challenge'))) {
    throw fail('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256');
  }
  if (get('aud')?.replace(/\/$/, '') !== fhirBaseUrl) throw fail('invalid_request', `aud must be this server's FHIR base URL, ${fhirBaseUrl}`);
  if (get('launch')) throw fail('invalid_request', 'EHR launch is not supported: use a standalone launch (launch/patient)');
  const scope = get('scope') ?? '';
  if (scope.split(/\s+/).some((s) => s && parseScope(s) === undefined)) throw fail('invalid_scope', 'Malformed scope');
  if (!anyGrantable(scope, client.scope)) throw fail('invalid_scope', 'None of the requested scopes is allowed for this client');
  let purposeOfUse: string | undefined;
  try {
    purposeOfUse = parsePurposeOfUse(get('purpose_of_use'));
  } catch (err) {
    throw fail('invalid_request', (err as Error).message);
  }
  // The client's registered purposes are known now; the user's role only once they have signed in.
  const refusal = purposeRefusal(purposeOfUse, client.purposes);
  if (refusal) throw fail('invalid_request', refusal);
  return {
    client,
    request: { clientId: client.id, redirectUri, scope, state, codeChallenge: get('code_challenge') as string, nonce: get('nonce'), purposeOfUse },
  };
}

export function redirectWith(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined) url.searchParams.set(k, v);
  }
  return url.toString();
}
