/**
 * Sign-in through Tessera's SMART App Launch: authorization code with PKCE (S256), as a public client.
 *
 * Where things live (docs/decisions/0022, 0026): access tokens only in this module's memory (never in
 * localStorage/sessionStorage or a script-readable cookie); the refresh token in an HttpOnly, SameSite=Strict
 * cookie that only `/oauth/session` receives, so a reload gets a new access token without asking the user
 * and no script can read it. During the redirect to the sign-in page and back, sessionStorage holds the
 * PKCE verifier, the state and the chosen purpose (random values, no PHI), removed when the code is exchanged.
 */
export interface PortalConfig {
  clientId: string;
  fhirBase: string;
  authorize: string;
  /** The portal's token endpoint (/oauth/session: the refresh token stays in an HttpOnly cookie). */
  token: string;
  signOut: string;
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
const SCOPE = 'openid fhirUser online_access user/*.cruds patient/*.cruds';
/** Sent with every call to /oauth/session: another site's page cannot send it (no CORS preflight is granted). */
const PORTAL_HEADER = { 'x-tessera-portal': '1' };

let current: Session | undefined;
/** Access tokens for another purpose of use than the sign-in one (declared per patient), by purpose. */
const byPurpose = new Map<string, { accessToken: string; expiresAt: number }>();

export const session = (): Session | undefined => current;
export async function signOut(): Promise<void> {
  current = undefined;
  byPurpose.clear();
  const cfg = await config().catch(() => undefined);
  if (cfg) await fetch(cfg.signOut, { method: 'POST', headers: PORTAL_HEADER, credentials: 'same-origin' }).catch(() => undefined);
}

async function config(): Promise<PortalConfig> {
  const res = await fetch('/portal/config.json', { cache: 'no-store' });
  if (!res.ok) throw new Error('The portal configuration could not be read.');
  return (await res.json()) as PortalConfig;
}

/** Held while a refresh token is used, by every tab of the portal in this browser (Web Locks API). */
const REFRESH_LOCK = 'tessera.portal.refresh';

/**
 * The portal's token endpoint: a code or (from the cookie) the refresh token, for a new access token.
 * The refresh token rotates and presenting a used one revokes the grant, so refreshes run one at a time
 * across the browser's tabs: two tabs reloading at once would otherwise both present the same cookie.
 * Under the lock the second tab's request carries the cookie the first one's answer set. (Web Locks exist
 * in secure contexts only, https or localhost; elsewhere refreshes are serialised within a tab only.)
 */
async function exchange(form: Record<string, string>): Promise<{ access_token: string; expires_in?: number; patient?: string }> {
  if (form.grant_type === 'refresh_token' && navigator.locks) return navigator.locks.request(REFRESH_LOCK, () => exchangeNow(form));
  return exchangeNow(form);
}

async function exchangeNow(form: Record<string, string>): Promise<{ access_token: string; expires_in?: number; patient?: string }> {
  const cfg = await config();
  const res = await fetch(cfg.token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...PORTAL_HEADER },
    credentials: 'same-origin',
    body: new URLSearchParams({ client_id: cfg.clientId, ...form }).toString(),
  });
  if (res.status === 204) throw new SessionError(401, 'Not signed in in this browser');
  const body = (await res.json()) as { access_token?: string; expires_in?: number; patient?: string; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new SessionError(res.status, body.error_description ?? body.error ?? String(res.status));
  return body as { access_token: string; expires_in?: number; patient?: string };
}

export class SessionError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function sessionOf(body: { access_token: string; expires_in?: number; patient?: string }, fhirBase: string, purpose?: string): Session {
  const c = claims(body.access_token);
  return {
    accessToken: body.access_token,
    role: String(c.role ?? ''),
    fhirUser: c.fhirUser ? String(c.fhirUser) : undefined,
    patient: body.patient ?? (c.patient ? String(c.patient) : undefined),
    purpose: c.purpose_of_use ? String(c.purpose_of_use) : purpose || undefined,
    expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000,
    fhirBase,
  };
}

/** After a reload: a new access token from the session cookie, or undefined when there is no session. */
export async function resumeSession(): Promise<Session | undefined> {
  try {
    const cfg = await config();
    current = sessionOf(await exchange({ grant_type: 'refresh_token' }), cfg.fhirBase);
    return current;
  } catch (err) {
    if (err instanceof SessionError) return undefined;
    throw err;
  }
}

/** Refreshes of this tab run one at a time (and, through `exchange`, one at a time across tabs). */
let refreshing: Promise<unknown> = Promise.resolve();

/**
 * A valid access token for `purpose` (the sign-in purpose when undefined): kept in memory, renewed from
 * the session cookie when it is about to expire, or when the server refused `rejected` (the token it was sent).
 */
export async function accessToken(purpose?: string, rejected?: string): Promise<string> {
  const own = () => !purpose || purpose === current?.purpose;
  const usable = () => {
    const held = own() ? current : byPurpose.get(purpose as string);
    return held && held.accessToken !== rejected && held.expiresAt - 30_000 > Date.now() ? held.accessToken : undefined;
  };
  if (!current) throw new SessionError(401, 'Not signed in');
  const ready = usable();
  if (ready) return ready;
  const turn = refreshing.then(async () => {
    const again = usable(); // another caller may have refreshed while this one waited
    if (again) return again;
    const body = await exchange({ grant_type: 'refresh_token', ...(own() ? {} : { purpose_of_use: purpose as string }) });
    const fresh = { accessToken: body.access_token, expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000 };
    if (own() && current) current = { ...current, ...fresh };
    else byPurpose.set(purpose as string, fresh);
    return fresh.accessToken;
  });
  refreshing = turn.catch(() => undefined);
  return turn;
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
  let body;
  try {
    body = await exchange({ grant_type: 'authorization_code', code: params.get('code') ?? '', redirect_uri: `${location.origin}/`, code_verifier: launch.verifier });
  } catch (err) {
    throw new Error(`Sign-in failed: ${(err as Error).message}`);
  }
  current = sessionOf(body, cfg.fhirBase, launch.purpose);
  return current;
}
