/**
 * Sign-in through Tessera's SMART App Launch: authorization code with PKCE (S256), as a public client.
 *
 * Where things live (docs/decisions/0022): the access token only in this module's memory (never in
 * localStorage/sessionStorage/cookies, so it dies with the tab and no other page load can read it); during
 * the redirect to the sign-in page and back, sessionStorage holds the PKCE verifier, the state and the
 * chosen purpose of use: random values and a code, no PHI, removed as soon as the code is exchanged.
 */

export interface PortalConfig {
  clientId: string;
  fhirBase: string;
  authorize: string;
  token: string;
}

export interface Session {
  accessToken: string;
  role: string;
  /** Practitioner/… or Patient/… */
  fhirUser?: string;
  /** A patient user's own record. */
  patient?: string;
  purpose?: string;
  expiresAt: number;
  fhirBase: string;
}

const PENDING = 'tessera.launch';
/** The scopes asked for; the server grants requested ∩ client ∩ role (a patient gets only patient/ ones). */
const SCOPE = 'openid fhirUser user/*.cruds patient/*.cruds';

let current: Session | undefined;

export const session = (): Session | undefined => (current && current.expiresAt > Date.now() ? current : undefined);
export const signOut = (): void => {
  current = undefined;
};

async function config(): Promise<PortalConfig> {
  const res = await fetch('/portal/config.json', { cache: 'no-store' });
  if (!res.ok) throw new Error('The portal configuration could not be read.');
  return (await res.json()) as PortalConfig;
}

const base64url = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = (n: number): string => base64url(crypto.getRandomValues(new Uint8Array(n)));

/** Sends the browser to Tessera's sign-in page, with the purpose of use the user chose. */
export async function beginSignIn(purpose: string): Promise<void> {
  const cfg = await config();
  const verifier = random(32);
  const state = random(16);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, purpose }));
  const url = new URL(cfg.authorize);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: cfg.clientId,
    redirect_uri: `${location.origin}/`,
    scope: SCOPE,
    state,
    aud: cfg.fhirBase,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(purpose ? { purpose_of_use: purpose } : {}),
  }).toString();
  location.assign(url.toString());
}

function claims(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
}

/**
 * On return from the sign-in page (`/?code=…&state=…` or `?error=…`): exchanges the code, then removes it
 * from the address bar. Returns undefined when this load is not a return from sign-in.
 */
export async function completeSignIn(): Promise<Session | undefined> {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return undefined;
  const pending = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', '/');
  if (params.has('error')) {
    throw new Error(params.get('error') === 'access_denied' ? 'Sign-in was refused: your role may not declare that purpose of use, or access was denied.' : `Sign-in failed (${params.get('error')}).`);
  }
  const launch = pending ? (JSON.parse(pending) as { verifier: string; state: string; purpose: string }) : undefined;
  if (!launch || launch.state !== params.get('state')) throw new Error('This sign-in was not started from this tab; please sign in again.');
  const cfg = await config();
  const res = await fetch(cfg.token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code') ?? '', redirect_uri: `${location.origin}/`, client_id: cfg.clientId, code_verifier: launch.verifier }).toString(),
  });
  const body = (await res.json()) as { access_token?: string; expires_in?: number; patient?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new Error(`Sign-in failed: ${body.error_description ?? res.status}`);
  const c = claims(body.access_token);
  current = {
    accessToken: body.access_token,
    role: String(c.role ?? ''),
    fhirUser: c.fhirUser ? String(c.fhirUser) : undefined,
    patient: body.patient ?? (c.patient ? String(c.patient) : undefined),
    purpose: c.purpose_of_use ? String(c.purpose_of_use) : launch.purpose || undefined,
    expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000,
    fhirBase: cfg.fhirBase,
  };
  return current;
}
