import type { Bundle, HumanName, Patient } from '@medplum/fhirtypes';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { issueAuthorizationCode } from '../auth/authorization-codes.js';
import {
  redirectWith,
  RedirectableError,
  UntrustedRedirectError,
  validateAuthorizationRequest,
  type AuthorizationRequest,
} from '../auth/authorization-request.js';
import { directoryUserFor, type FederatedSignIn, type FederationChecks } from '../auth/federation.js';
import { grantedScopes, NON_RESOURCE_SCOPES } from '../auth/granted-scopes.js';
import { OAuthError } from '../auth/oauth-error.js';
import { PURPOSES_OF_USE, purposeRefusal } from '../auth/purpose-of-use.js';
import { cookie, CSRF_COOKIE, newCsrfSecret, readCookie, SignInStates } from '../auth/sign-in-state.js';
import type { UserGrant } from '../auth/user-grant.js';
import { findClient } from '../security/clients.js';
import type { SigningKey } from '../security/signing-key.js';
import type { AuthContext, TokenService } from '../security/token-service.js';
import { parseScopes } from '../security/scopes.js';
import type { FhirEngine } from '../engine/fhir-engine.js';
import { requestFor, type FhirRequest, type FhirResponse } from '../engine/fhir-request.js';
import { responseBody } from '../engine/responses.js';
import { ID_RE } from '../store/repository.js';
import type { Database } from '../store/database.js';
import type { Repository } from '../store/repository.js';
import { isLocked, type LockoutPolicy } from '../users/lockout.js';
import { signInWithPassword } from '../users/sign-in.js';
import { findUser, type DirectoryUser } from '../users/user-directory.js';
import { decodeJwt } from 'jose';
import type { AuditLog } from '../audit/audit-log.js';
import { loginAuditRecord, type LoginAttempt } from '../audit/audit-record.js';
import { registerPortalSession } from './portal-session.js';
import { errorPage, patientSelectionPage, signInPage, type PatientChoice } from './sign-in-pages.js';

export interface OAuthRouteOptions {
  db: Database;
  repo: Repository;
  tokens: TokenService;
  key: SigningKey;
  baseUrl: () => string;
  lockout: LockoutPolicy;
  federation?: FederatedSignIn;
  /** The FHIR engine: the launch-patient picker searches through it as the signed-in user (policy and audit apply). */
  engine: FhirEngine;
  /** Sign-ins and token requests are recorded here before they are answered (absent: audit off). */
  audit?: AuditLog;
  /** Marks a request as audited here, so the HTTP layer's catch-all does not record it again. */
  audited: (req: FastifyRequest) => void;
}

const FEDERATION_COOKIE = 'tessera_federation';
const STATE_MAX_AGE = 600;
const SIGN_IN_FAILED = 'Sign-in failed: check your email, password and one-time code. After repeated failures sign-in is paused for a while.';

type SelectPatientState = { request: AuthorizationRequest; userId: string; authTime: number };
type FederationState = { request: AuthorizationRequest; checks: FederationChecks };

const formOf = (req: FastifyRequest): Record<string, string> => Object.fromEntries(new URLSearchParams(typeof req.body === 'string' ? req.body : ''));

/**
 * The authorization server's HTTP surface: discovery, the token, revocation and introspection endpoints,
 * and the SMART App Launch sign-in (authorization endpoint, patient selection, federated sign-in). Every
 * URL it names comes from the public base URL. Audit events are logged with directory and client ids
 * only (no names, emails or patient ids).
 */
export function registerOAuthRoutes(app: FastifyInstance, options: OAuthRouteOptions): void {
  const { db, tokens } = options;
  const states = new SignInStates(options.key);
  const base = options.baseUrl;
  const secureCookies = () => base().startsWith('https:');

  const smartConfiguration = async () => {
    const b = base();
    return {
      issuer: b,
      jwks_uri: `${b}/.well-known/jwks.json`,
      authorization_endpoint: `${b}/oauth/authorize`,
      token_endpoint: `${b}/oauth/token`,
      revocation_endpoint: `${b}/oauth/revoke`,
      introspection_endpoint: `${b}/oauth/introspect`,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384', 'RS256', 'ES256'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: [...NON_RESOURCE_SCOPES, 'patient/*.rs', 'user/*.rs', 'user/*.cruds', 'system/*.cruds', 'system/*.rs'],
      purpose_of_use_supported: PURPOSES_OF_USE,
      capabilities: [
        'launch-standalone',
        'client-public',
        'client-confidential-symmetric',
        'client-confidential-asymmetric',
        'sso-openid-connect',
        'context-standalone-patient',
        'permission-offline',
        'permission-online',
        'permission-patient',
        'permission-user',
        'permission-v2',
        'permission-v1',
      ],
    };
  };
  app.get('/.well-known/smart-configuration', smartConfiguration);
  app.get('/fhir/.well-known/smart-configuration', smartConfiguration);
  app.get('/.well-known/openid-configuration', async () => {
    const b = base();
    return {
      issuer: b,
      authorization_endpoint: `${b}/oauth/authorize`,
      token_endpoint: `${b}/oauth/token`,
      revocation_endpoint: `${b}/oauth/revoke`,
      introspection_endpoint: `${b}/oauth/introspect`,
      jwks_uri: `${b}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      code_challenge_methods_supported: ['S256'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      scopes_supported: NON_RESOURCE_SCOPES,
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'fhirUser'],
      authorization_response_iss_parameter_supported: true,
    };
  });
  app.get('/.well-known/jwks.json', async () => ({ keys: [{ ...options.key.publicJwk, use: 'sig', alg: 'ES256', kid: options.key.kid }] }));

  const recordLogin = async (req: FastifyRequest, attempt: Omit<LoginAttempt, 'requestId'>) => {
    options.audited(req);
    await options.audit?.record(loginAuditRecord({ ...attempt, requestId: req.id }));
  };
  registerPortalSession(app, { db, tokens, base, recordLogin });
  const userOf = (user: Pick<DirectoryUser, 'id' | 'role' | 'fhirUser'>) => ({ id: user.id, role: user.role, fhirUser: user.fhirUser ?? undefined });

  // The token endpoint: each token issued (with its id) or refused (with the client it claimed) is audited.
  app.post('/oauth/token', async (req, reply) => {
    const form = formOf(req);
    try {
      const token = await tokens.issue(form, req.headers.authorization, base());
      const claims = decodeJwt(token.access_token);
      const user = typeof claims.role === 'string' ? { id: String(claims.sub), role: claims.role, fhirUser: typeof claims.fhirUser === 'string' ? claims.fhirUser : undefined } : undefined;
      await recordLogin(req, { method: 'token', clientId: String(claims.client_id ?? claims.sub), user, status: 200, tokenId: claims.jti });
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(token);
    } catch (err) {
      if (err instanceof OAuthError) await recordLogin(req, { method: 'token', clientId: claimedClientId(form, req.headers.authorization), status: err.status });
      return oauthError(req, reply, err);
    }
  });

  const oauthEndpoint = (handler: (form: Record<string, string>, authorization: string | undefined) => Promise<unknown>) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        const result = await handler(formOf(req), req.headers.authorization);
        return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(result ?? '');
      } catch (err) {
        return oauthError(req, reply, err);
      }
    };
  app.post('/oauth/revoke', oauthEndpoint(async (form, authorization) => { await tokens.revoke(form, authorization, base()); }));
  app.post('/oauth/introspect', oauthEndpoint((form, authorization) => tokens.introspect(form, authorization, base())));

  /** Headers of every sign-in page: no caching, no framing, no script, forms only to us and the places we redirect to. */
  const html = (reply: FastifyReply, status: number, body: string, formTargets: string[] = []) => {
    const origins = [...new Set(formTargets.map((u) => new URL(u).origin))].join(' ');
    return reply
      .status(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header(
        'content-security-policy',
        `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${origins ? ` ${origins}` : ''}; frame-ancestors 'none'; base-uri 'none'`,
      )
      .send(body);
  };
  const federationOption = options.federation ? { label: 'Sign in with the community account' } : undefined;
  const formTargets = (request: AuthorizationRequest) => [request.redirectUri, ...(options.federation ? [options.federation.issuer] : [])];

  app.get('/oauth/authorize', async (req, reply) => {
    const query = new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
    try {
      const { request, client } = await validateAuthorizationRequest(db, query, `${base()}/fhir`);
      const csrf = newCsrfSecret();
      reply.header('set-cookie', cookie(CSRF_COOKIE, csrf, { path: '/oauth', secure: secureCookies(), maxAgeSeconds: STATE_MAX_AGE }));
      const state = await states.seal('sign-in', { request }, csrf);
      return html(reply, 200, signInPage({ state, clientName: client.name, federation: federationOption }), formTargets(request));
    } catch (err) {
      return authorizationError(reply, err);
    }
  });

  app.post('/oauth/authorize', async (req, reply) => {
    const form = formOf(req);
    const csrf = readCookie(req.headers.cookie, CSRF_COOKIE);
    const sealed = await states.open<{ request: AuthorizationRequest }>('sign-in', form.state, csrf);
    if (!sealed) return html(reply, 400, errorPage('The sign-in form expired or was not sent from this browser.'));
    const { request } = sealed;
    const outcome = await signInWithPassword(db, { email: form.email ?? '', password: form.password ?? '', totp: form.totp }, options.lockout);
    if (!outcome.ok) {
      req.log.info({ event: outcome.event, reason: outcome.reason, userId: outcome.userId, clientId: request.clientId }, 'sign-in refused');
      if (outcome.nowLocked) req.log.warn({ event: 'account-locked', userId: outcome.userId }, 'account locked after repeated failures');
      const tried = outcome.userId ? await findUser(db, outcome.userId) : undefined;
      await recordLogin(req, { method: 'password', clientId: request.clientId, user: tried ? userOf(tried) : undefined, status: 401 });
      const client = await findClient(db, request.clientId);
      return html(reply, 200, signInPage({ state: form.state, clientName: client?.name ?? '', error: SIGN_IN_FAILED, federation: federationOption }), formTargets(request));
    }
    req.log.info({ event: 'sign-in', method: 'password', userId: outcome.user.id, clientId: request.clientId }, 'signed in');
    await recordLogin(req, { method: 'password', clientId: request.clientId, user: userOf(outcome.user), status: 200 });
    return afterSignIn(reply, request, outcome.user, csrf as string, Math.floor(Date.now() / 1000));
  });

  /** Once the user is known: a staff user picks the launch patient (if the app asked for one), then the code goes back. */
  const afterSignIn = async (reply: FastifyReply, request: AuthorizationRequest, user: DirectoryUser, csrf: string, authTime: number) => {
    // A user declares only the purposes of their role (a clinician cannot claim public health or payment).
    const refusal = purposeRefusal(request.purposeOfUse, null, user.role, options.tokens.rolePurposes);
    if (refusal) return reply.redirect(redirectWith(request.redirectUri, { error: 'access_denied', error_description: refusal, state: request.state, iss: base() }), 302);
    if (user.role === 'patient') {
      const patient = user.fhirUser?.startsWith('Patient/') ? user.fhirUser.slice('Patient/'.length) : undefined;
      if (!patient) return html(reply, 400, errorPage('This patient account is not linked to a patient record.'));
      return issueCode(reply, request, user, patient, authTime);
    }
    if (request.scope.split(/\s+/).includes('launch/patient')) {
      const state = await states.seal('select-patient', { request, userId: user.id, authTime } satisfies SelectPatientState, csrf);
      return html(reply, 200, patientSelectionPage({ state }), formTargets(request));
    }
    return issueCode(reply, request, user, undefined, authTime);
  };

  const issueCode = async (reply: FastifyReply, request: AuthorizationRequest, user: DirectoryUser, patient: string | undefined, authTime: number) => {
    const client = await findClient(db, request.clientId);
    if (!client || client.disabled) return html(reply, 400, errorPage('The application has been disabled.'));
    const scope = grantedScopes(request.scope, client.scope, user.role, !!patient);
    if (!scope.some((s) => !NON_RESOURCE_SCOPES.includes(s) || s === 'openid')) {
      return reply.redirect(redirectWith(request.redirectUri, { error: 'access_denied', error_description: 'None of the requested scopes is available to this user', state: request.state, iss: base() }), 302);
    }
    const grant: UserGrant = {
      grantId: randomUUID(),
      clientId: client.id,
      userId: user.id,
      fhirUser: user.fhirUser ?? undefined,
      role: user.role,
      organization: user.organization,
      scope: scope.join(' '),
      patient,
      purposeOfUse: request.purposeOfUse,
      nonce: request.nonce,
      authTime,
    };
    const code = await issueAuthorizationCode(db, { clientId: client.id, redirectUri: request.redirectUri, codeChallenge: request.codeChallenge }, grant);
    reply.header('set-cookie', cookie(CSRF_COOKIE, '', { path: '/oauth', secure: secureCookies(), maxAgeSeconds: 0 }));
    return reply.header('cache-control', 'no-store').redirect(redirectWith(request.redirectUri, { code, state: request.state, iss: base() }), 302);
  };

  app.post('/oauth/authorize/patient', async (req, reply) => {
    const form = formOf(req);
    const csrf = readCookie(req.headers.cookie, CSRF_COOKIE);
    const sealed = await states.open<SelectPatientState>('select-patient', form.state, csrf);
    if (!sealed) return html(reply, 400, errorPage('The patient selection expired or was not sent from this browser.'));
    const { request, userId, authTime } = sealed;
    const user = await findUser(db, userId);
    if (!user || user.disabled) return html(reply, 403, errorPage('This account is disabled.'));
    // The picker searches and reads as this user (the search of patients a staff user has: user/Patient.rs):
    // the access policy decides what it lists (consent, labels) and each search is audited with the user.
    const asUser: AuthContext = { clientId: request.clientId, scopes: parseScopes('user/Patient.rs'), user: { id: user.id, role: user.role, fhirUser: user.fhirUser ?? undefined }, organization: user.organization, purposeOfUse: request.purposeOfUse };
    // Its AuditEvent is the engine's (the search or read as the user), not the HTTP catch-all's.
    options.audited(req);
    const patientRequest = (url: string): FhirRequest => requestFor('GET', url, { auth: asUser, baseUrl: `${base()}/fhir` });
    if (form.action === 'choose') {
      const chosen = form.patient && ID_RE.test(form.patient) ? await options.engine.handle(patientRequest(`Patient/${form.patient}`), req.id).catch(() => undefined) : undefined;
      if (chosen?.status !== 200) {
        return html(reply, 200, patientSelectionPage({ state: form.state, error: 'Choose a patient from the list.' }), formTargets(request));
      }
      req.log.info({ event: 'launch-patient-selected', userId, clientId: request.clientId }, 'patient selected for launch');
      return issueCode(reply, request, user, form.patient, authTime);
    }
    const name = (form.name ?? '').trim();
    const birthdate = (form.birthdate ?? '').trim();
    if (!name && !birthdate) return html(reply, 200, patientSelectionPage({ state: form.state, error: 'Enter a name or a birth date.' }), formTargets(request));
    if (birthdate && !/^\d{4}(-\d{2}(-\d{2})?)?$/.test(birthdate)) {
      return html(reply, 200, patientSelectionPage({ state: form.state, name, birthdate, error: 'Write the birth date as YYYY-MM-DD.' }), formTargets(request));
    }
    const query = new URLSearchParams({ _count: '20', ...(name ? { name } : {}), ...(birthdate ? { birthdate } : {}) }).toString();
    const found = await options.engine.handle(patientRequest(`Patient?${query}`), req.id);
    const results = patientChoices(found);
    return html(reply, 200, patientSelectionPage({ state: form.state, name, birthdate, results }), formTargets(request));
  });

  app.post('/oauth/federated', async (req, reply) => {
    const form = formOf(req);
    const csrf = readCookie(req.headers.cookie, CSRF_COOKIE);
    const sealed = await states.open<{ request: AuthorizationRequest }>('sign-in', form.state, csrf);
    if (!options.federation) return html(reply, 404, errorPage('Sign-in with a community account is not configured.'));
    if (!sealed) return html(reply, 400, errorPage('The sign-in form expired or was not sent from this browser.'));
    let started;
    try {
      started = await options.federation.start(`${base()}/oauth/federated/callback`);
    } catch (err) {
      req.log.warn({ event: 'federation-unavailable', err: { message: (err as Error).message } }, 'community provider unavailable');
      return html(reply, 502, errorPage('The community sign-in service cannot be reached. Sign in with your password, or try again later.'));
    }
    const state = await states.seal('federation', { request: sealed.request, checks: started.checks } satisfies FederationState, csrf as string);
    reply.header('set-cookie', cookie(FEDERATION_COOKIE, state, { path: '/oauth/federated', secure: secureCookies(), maxAgeSeconds: STATE_MAX_AGE }));
    return reply.redirect(started.url, 303);
  });

  app.get('/oauth/federated/callback', async (req, reply) => {
    const csrf = readCookie(req.headers.cookie, CSRF_COOKIE);
    const sealed = await states.open<FederationState>('federation', readCookie(req.headers.cookie, FEDERATION_COOKIE), csrf);
    reply.header('set-cookie', cookie(FEDERATION_COOKIE, '', { path: '/oauth/federated', secure: secureCookies(), maxAgeSeconds: 0 }));
    if (!options.federation || !sealed) return html(reply, 400, errorPage('The community sign-in expired or was not started from this browser.'));
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    let identity;
    try {
      identity = await options.federation.finish(new URL(`${base()}/oauth/federated/callback${query}`), sealed.checks);
    } catch (err) {
      req.log.info({ event: 'sign-in-refused', method: 'federated', reason: 'upstream', err: { message: (err as Error).message } }, 'federated sign-in failed');
      await recordLogin(req, { method: 'federated', clientId: sealed.request.clientId, status: 400 });
      return html(reply, 400, errorPage('The community sign-in did not succeed.'));
    }
    const user = await directoryUserFor(db, identity);
    if (!user || user.disabled || isLocked(user)) {
      req.log.info({ event: 'sign-in-refused', method: 'federated', reason: !user ? 'unknown-identity' : user.disabled ? 'disabled' : 'locked', userId: user?.id }, 'federated sign-in refused');
      await recordLogin(req, { method: 'federated', clientId: sealed.request.clientId, user: user ? userOf(user) : undefined, status: 403 });
      return html(reply, 403, errorPage('This community account is not a user of the exchange, or the account is disabled.'));
    }
    req.log.info({ event: 'sign-in', method: 'federated', userId: user.id, clientId: sealed.request.clientId }, 'signed in');
    await recordLogin(req, { method: 'federated', clientId: sealed.request.clientId, user: userOf(user), status: 200 });
    return afterSignIn(reply, sealed.request, user, csrf as string, Math.floor(Date.now() / 1000));
  });

  const authorizationError = (reply: FastifyReply, err: unknown) => {
    if (err instanceof UntrustedRedirectError) return html(reply, 400, errorPage(err.message));
    if (err instanceof RedirectableError) {
      return reply.redirect(redirectWith(err.redirectUri, { error: err.error, error_description: err.message, state: err.state, iss: base() }), 302);
    }
    throw err;
  };
}

/** The Patients of a searchset, as the picker lists them. */
function patientChoices(res: FhirResponse): PatientChoice[] {
  const bundle = responseBody(res) as Bundle;
  return (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Patient => r?.resourceType === 'Patient')
    .map((p) => ({ id: p.id as string, name: displayName(p.name), birthDate: p.birthDate }));
}

function displayName(names: HumanName[] | undefined): string {
  const n = names?.find((x) => x.use === 'official') ?? names?.[0];
  if (!n) return '(no name)';
  return n.text ?? [...(n.given ?? []), n.family].filter(Boolean).join(' ');
}

/** An OAuth error as RFC 6749 JSON (anything else goes on to the error handler). */
function oauthError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof OAuthError)) throw err;
  if (err.status === 401 && req.headers.authorization?.startsWith('Basic ')) reply.header('www-authenticate', 'Basic realm="tessera"');
  return reply.status(err.status).header('cache-control', 'no-store').send({ error: err.error, error_description: err.message });
}

/** The client a refused token request claimed to be (HTTP Basic, assertion issuer or form), for its audit event. */
function claimedClientId(form: Record<string, string>, authorization: string | undefined): string | undefined {
  if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
    try {
      return decodeURIComponent(decoded.slice(0, Math.max(0, decoded.indexOf(':')))) || undefined;
    } catch {
      return undefined;
    }
  }
  if (form.client_assertion) {
    try {
      return String(decodeJwt(form.client_assertion).iss ?? '') || undefined;
    } catch {
      return undefined;
    }
  }
  return form.client_id || undefined;
}
