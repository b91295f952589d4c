import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { randomUUID } from 'node:crypto';
import { redeemAuthorizationCode } from '../auth/authorization-codes.js';
import { OAuthError } from '../auth/oauth-error.js';
import { pkceMatches } from '../auth/pkce.js';
import { DEFAULT_ROLE_PURPOSES, parsePurposeOfUse, purposeRefusal, type RolePurposes } from '../auth/purpose-of-use.js';
import { issueRefreshToken, lookupRefreshToken, revokeRefreshToken, useRefreshToken, wantsRefreshToken } from '../auth/refresh-tokens.js';
import { revokeId, tokenInactiveReason, type CallerLookup } from '../auth/token-status.js';
import type { UserGrant } from '../auth/user-grant.js';
import type { Database } from '../store/database.js';
import { findClient, type OAuthClient } from './clients.js';
import { parseScope, parseScopes, scopeAllowed, type Scope } from './scopes.js';
import { verifySecret } from './secrets.js';
import { SIGNING_ALG, type SigningKey } from './signing-key.js';

export { OAuthError };

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_LIFETIME_SECONDS = 3600;
const ID_TOKEN_LIFETIME_SECONDS = 3600;
const VERIFIED_CACHE_SIZE = 10_000;
/** Issuer and audience of access tokens: only this server reads them (clients treat them as opaque). */
const ISSUER = 'tessera';
const ACCESS_TOKEN_TYPE = 'at+jwt';

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  scope: string;
  /** The launch context's Patient id (SMART `launch/patient`). */
  patient?: string;
  id_token?: string;
  refresh_token?: string;
}

/** Who is asking and what their token allows: the input of the access policy (src/engine/access-policy.ts). */
export interface AuthContext {
  clientId: string;
  scopes: Scope[];
  /** The person signed in, for tokens issued to a user (SMART App Launch); absent for backend clients. */
  user?: AuthUser;
  /** The launch context's patient (`launch/patient`): `patient/` scopes reach only this patient's compartment. */
  patient?: string;
  /** The declared purpose of use (IHE IUA `purpose_of_use`): TREAT, ETREAT, HPAYMT, HOPERAT, PUBHLTH, PATRQT, BTG. */
  purposeOfUse?: string;
  /** The organization the caller acts for (`Organization/{id}`): the user's, or the client's participant. */
  organization?: string;
  /** The token's id (`jti`), for revocation and the audit record. */
  tokenId?: string;
}

export interface AuthUser {
  /** The directory's id of the user (federated users are mapped to a directory user too). */
  id: string;
  /** The user's FHIR resource: `Practitioner/{id}` (staff) or `Patient/{id}` (patients). */
  fhirUser?: string;
  /** clinician, privacy-officer, steward, interface-analyst, admin, patient (docs/governance.md). */
  role: string;
}

/** What RFC 7662 introspection answers. */
export type IntrospectionResponse = { active: false } | ({ active: true } & Record<string, unknown>);

interface AccessClaims {
  sub: string;
  client_id: string;
  scope: string;
  fhirUser?: string;
  role?: string;
  organization?: string;
  patient?: string;
  purpose_of_use?: string;
  grant_id?: string;
}

/**
 * The token endpoint's logic (client_credentials for SMART Backend Services; authorization_code and
 * refresh_token for SMART App Launch), revocation, introspection, and verification of access tokens.
 * Clients authenticate with a secret (HTTP Basic or form fields), a JWT assertion signed by a key in their
 * registered JWKS, or (public clients, user grants only) their client_id alone.
 */
export class TokenService {
  private readonly usedAssertionIds = new Map<string, number>();
  private readonly verified = new Map<string, { context: AuthContext; grantId?: string; exp: number }>();

  constructor(
    private readonly db: Database,
    private readonly key: SigningKey,
    /** The purposes of use each user role may declare (TESSERA_ROLE_PURPOSES). */
    readonly rolePurposes: RolePurposes = DEFAULT_ROLE_PURPOSES,
  ) {}

  /** `baseUrl`: the server's public base URL (TESSERA_BASE_URL); the token URL and id_token issuer derive from it. */
  async issue(form: Record<string, string>, authorization: string | undefined, baseUrl: string): Promise<TokenResponse> {
    const tokenUrl = `${baseUrl}/oauth/token`;
    switch (form.grant_type) {
      case 'client_credentials':
        return this.clientCredentials(form, await this.authenticateClient(form, authorization, tokenUrl));
      case 'authorization_code':
        return this.authorizationCode(form, await this.authenticateClient(form, authorization, tokenUrl, { allowPublic: true }), baseUrl);
      case 'refresh_token':
        return this.refresh(form, await this.authenticateClient(form, authorization, tokenUrl, { allowPublic: true }));
      default:
        throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be client_credentials, authorization_code or refresh_token');
    }
  }

  /**
   * Verifies a bearer token and returns who it belongs to and what it may do. The signature check is
   * remembered until the token expires (a client sends the same token on every request, and an ES256
   * check per request is wasted work); whether the client or user is still enabled and the token not
   * revoked is read from the database on every call (token-status.ts), so that those take effect at once.
   * `alongside`: facts about the caller asked in that same statement; the request then gets a context
   * of its own, by which they are kept (the cached one is shared by every request of the token).
   */
  async verify(token: string, alongside?: CallerLookup): Promise<AuthContext> {
    const now = Date.now() / 1000;
    let cached = this.verified.get(token);
    if (!cached || cached.exp <= now) {
      const { payload } = await jwtVerify(token, this.key.publicKey, { issuer: ISSUER, audience: ISSUER, algorithms: [SIGNING_ALG], typ: ACCESS_TOKEN_TYPE });
      cached = { context: contextOf(payload), grantId: optional(payload.grant_id), exp: Number(payload.exp ?? now) };
      if (this.verified.size >= VERIFIED_CACHE_SIZE) {
        this.verified.delete(this.verified.keys().next().value as string);
      }
      this.verified.set(token, cached);
    }
    const { grantId } = cached;
    const context = alongside ? { ...cached.context } : cached.context;
    const subject = { clientId: context.clientId, userId: context.user?.id, tokenId: context.tokenId, grantId };
    const reason = await tokenInactiveReason(this.db, subject, alongside && { lookup: alongside, context });
    if (reason) {
      throw new Error(`The access token is no longer valid: ${reason}`);
    }
    return context;
  }

  /** The token endpoint for a user's grant, after the authorization endpoint issued a code for it. */
  async tokensForGrant(grant: UserGrant, baseUrl: string | undefined, refresh?: { expiresAt: number; purposeOfUse?: string }): Promise<TokenResponse> {
    const { token } = await this.mintAccessToken({
      sub: grant.userId,
      client_id: grant.clientId,
      scope: grant.scope,
      fhirUser: grant.fhirUser,
      role: grant.role,
      organization: grant.organization,
      patient: grant.patient,
      purpose_of_use: refresh?.purposeOfUse ?? grant.purposeOfUse,
      grant_id: grant.grantId,
    });
    const response: TokenResponse = { access_token: token, token_type: 'bearer', expires_in: TOKEN_LIFETIME_SECONDS, scope: grant.scope };
    if (grant.patient) response.patient = grant.patient;
    const scopes = grant.scope.split(' ');
    if (baseUrl && scopes.includes('openid')) response.id_token = await this.idToken(grant, baseUrl);
    const kind = wantsRefreshToken(grant.scope);
    if (kind) response.refresh_token = await issueRefreshToken(this.db, grant, kind, refresh?.expiresAt);
    return response;
  }

  /** RFC 7009: always 200 for the caller; only the client a token was issued to can revoke it. */
  async revoke(form: Record<string, string>, authorization: string | undefined, baseUrl: string): Promise<void> {
    const client = await this.authenticateClient(form, authorization, `${baseUrl}/oauth/token`, { allowPublic: true });
    const token = form.token;
    if (!token) throw new OAuthError(400, 'invalid_request', 'token is required');
    const payload = await this.accessTokenPayload(token);
    if (payload) {
      if (String(payload.client_id ?? payload.sub) === client.id && payload.jti) {
        await revokeId(this.db, String(payload.jti), Number(payload.exp ?? 0) * 1000);
      }
      return;
    }
    await revokeRefreshToken(this.db, token, client.id);
  }

  /** RFC 7662, for confidential clients (resource servers and apps with a secret or key). */
  async introspect(form: Record<string, string>, authorization: string | undefined, baseUrl: string): Promise<IntrospectionResponse> {
    const client = await this.authenticateClient(form, authorization, `${baseUrl}/oauth/token`);
    if (client.publicClient) throw new OAuthError(401, 'invalid_client', 'Introspection is for confidential clients');
    const token = form.token;
    if (!token) throw new OAuthError(400, 'invalid_request', 'token is required');
    const payload = await this.accessTokenPayload(token);
    if (payload) {
      try {
        await this.verify(token);
      } catch {
        return { active: false };
      }
      const { iss: _iss, aud: _aud, grant_id: _grant, ...claims } = payload;
      return { active: true, token_type: 'Bearer', ...claims };
    }
    const refresh = await lookupRefreshToken(this.db, token);
    if (!refresh) return { active: false };
    const g = refresh.grant;
    if (await tokenInactiveReason(this.db, { clientId: g.clientId, userId: g.userId, grantId: g.grantId })) return { active: false };
    return { active: true, token_type: 'refresh_token', client_id: g.clientId, sub: g.userId, scope: g.scope, exp: Math.floor(refresh.expiresAt / 1000), fhirUser: g.fhirUser, patient: g.patient };
  }

  /** A token's claims if it is an access token signed by this server (expired or not), else undefined. */
  private async accessTokenPayload(token: string): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.key.publicKey, {
        issuer: ISSUER,
        audience: ISSUER,
        algorithms: [SIGNING_ALG],
        typ: ACCESS_TOKEN_TYPE,
        currentDate: new Date(0),
      });
      return payload;
    } catch {
      return undefined;
    }
  }

  private async clientCredentials(form: Record<string, string>, client: OAuthClient): Promise<TokenResponse> {
    if (client.publicClient) throw new OAuthError(400, 'unauthorized_client', 'A public client cannot use client_credentials');
    const allowed = parseScopes(client.scope);
    const requested = (form.scope ?? '').split(/\s+/).filter(Boolean);
    for (const s of requested) {
      if (parseScope(s) === undefined) {
        throw new OAuthError(400, 'invalid_scope', `Malformed scope "${s}"`);
      }
    }
    const granted = requested.length ? requested.filter((s) => scopeAllowed(s, allowed)) : client.scope.split(/\s+/).filter(Boolean);
    if (!granted.length) {
      throw new OAuthError(400, 'invalid_scope', 'None of the requested scopes is allowed for this client');
    }
    const scope = granted.join(' ');
    const purposeOfUse = parsePurposeOfUse(form.purpose_of_use);
    const refusal = purposeRefusal(purposeOfUse, client.purposes);
    if (refusal) throw new OAuthError(400, 'invalid_request', refusal);
    const { token } = await this.mintAccessToken({
      sub: client.id,
      client_id: client.id,
      scope,
      purpose_of_use: purposeOfUse,
      organization: await this.participantOrganization(client.id),
    });
    return { access_token: token, token_type: 'bearer', expires_in: TOKEN_LIFETIME_SECONDS, scope };
  }

  private async authorizationCode(form: Record<string, string>, client: OAuthClient, baseUrl: string): Promise<TokenResponse> {
    if (!form.code) throw new OAuthError(400, 'invalid_request', 'code is required');
    // Redeemed (deleted) before any other check: a code that fails a check cannot be tried again.
    const redeemed = await redeemAuthorizationCode(this.db, form.code);
    if (!redeemed || redeemed.clientId !== client.id) throw new OAuthError(400, 'invalid_grant', 'The code is unknown, expired, used, or was issued to another client');
    if (form.redirect_uri !== redeemed.redirectUri) throw new OAuthError(400, 'invalid_grant', 'redirect_uri differs from the authorization request');
    if (!pkceMatches(form.code_verifier, redeemed.codeChallenge)) throw new OAuthError(400, 'invalid_grant', 'PKCE verification failed (code_verifier)');
    if (await tokenInactiveReason(this.db, { clientId: client.id, userId: redeemed.grant.userId })) throw new OAuthError(400, 'invalid_grant', 'The user or client is disabled');
    return this.tokensForGrant(redeemed.grant, baseUrl);
  }

  private async refresh(form: Record<string, string>, client: OAuthClient): Promise<TokenResponse> {
    if (!form.refresh_token) throw new OAuthError(400, 'invalid_request', 'refresh_token is required');
    // A purpose the user may not declare is refused before the token is used up (the session goes on).
    const purposeOfUse = parsePurposeOfUse(form.purpose_of_use);
    if (purposeOfUse) {
      const pending = await lookupRefreshToken(this.db, form.refresh_token);
      const refusal = purposeRefusal(purposeOfUse, client.purposes, pending?.grant.role, this.rolePurposes);
      if (refusal) throw new OAuthError(400, 'invalid_request', refusal);
    }
    const used = await useRefreshToken(this.db, form.refresh_token, client.id);
    if ('refused' in used) throw new OAuthError(400, 'invalid_grant', `The refresh token is not valid (${used.refused})`);
    const grant = used.grant;
    if (await tokenInactiveReason(this.db, { clientId: client.id, userId: grant.userId, grantId: grant.grantId })) {
      throw new OAuthError(400, 'invalid_grant', 'The user or client is disabled, or the grant was revoked');
    }
    // A refresh may narrow the scope (RFC 6749 §6), never widen it; the rotated token keeps the narrower one.
    const requested = (form.scope ?? '').split(/\s+/).filter(Boolean);
    const had = grant.scope.split(' ');
    if (requested.some((s) => !had.includes(s))) throw new OAuthError(400, 'invalid_scope', 'A refresh cannot add scopes');
    const scope = requested.length ? requested.join(' ') : grant.scope;
    // A user may declare another purpose their role allows for what they do next (the portal: per
    // patient); it holds for the access token returned; the grant keeps the purpose declared at sign-in.
    const refusal = purposeRefusal(purposeOfUse, client.purposes, grant.role);
    if (refusal) throw new OAuthError(400, 'invalid_request', refusal);
    return this.tokensForGrant({ ...grant, scope }, undefined, { expiresAt: used.expiresAt, purposeOfUse });
  }

  private async mintAccessToken(claims: AccessClaims): Promise<{ token: string; jti: string }> {
    const jti = randomUUID();
    const defined = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
    const token = await new SignJWT(defined)
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.key.kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(ISSUER)
      .setSubject(claims.sub)
      .setAudience(ISSUER)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(`${TOKEN_LIFETIME_SECONDS}s`)
      .sign(this.key.privateKey);
    return { token, jti };
  }

  /** OpenID Connect id_token: issuer is the public base URL, audience the client; fhirUser as an absolute URL (SMART). */
  private async idToken(grant: UserGrant, baseUrl: string): Promise<string> {
    const claims: JWTPayload = { auth_time: grant.authTime };
    if (grant.fhirUser) claims.fhirUser = `${baseUrl}/fhir/${grant.fhirUser}`;
    if (grant.nonce) claims.nonce = grant.nonce;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.key.kid, typ: 'JWT' })
      .setIssuer(baseUrl)
      .setAudience(grant.clientId)
      .setSubject(grant.userId)
      .setIssuedAt()
      .setExpirationTime(`${ID_TOKEN_LIFETIME_SECONDS}s`)
      .sign(this.key.privateKey);
  }

  private async participantOrganization(clientId: string): Promise<string | undefined> {
    const rows = await this.db.query<{ organization_id: string }>('SELECT organization_id FROM participant WHERE active = 1 AND client_id = ?', [clientId]);
    return rows[0] ? `Organization/${rows[0].organization_id}` : undefined;
  }

  /**
   * Client authentication. A public client (registered with --public) identifies itself by client_id
   * alone and only where `allowPublic` (user grants, revocation); PKCE protects its codes.
   */
  async authenticateClient(form: Record<string, string>, authorization: string | undefined, tokenUrl: string, options: { allowPublic?: boolean } = {}): Promise<OAuthClient> {
    if (form.client_assertion_type || form.client_assertion) {
      return this.authenticateAssertion(form, tokenUrl);
    }
    let clientId = form.client_id;
    let secret = form.client_secret;
    if (authorization?.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      try {
        clientId = decodeURIComponent(decoded.slice(0, colon));
        secret = decodeURIComponent(decoded.slice(colon + 1));
      } catch {
        throw new OAuthError(401, 'invalid_client', 'Malformed HTTP Basic credentials');
      }
    }
    if (clientId && !secret && options.allowPublic) {
      const client = await findClient(this.db, clientId);
      if (!client || client.disabled || !client.publicClient) {
        throw new OAuthError(401, 'invalid_client', 'Unknown or disabled client, or a confidential client without its credentials');
      }
      return client;
    }
    if (!clientId || !secret) {
      throw new OAuthError(401, 'invalid_client', 'Client authentication is required (HTTP Basic, client_secret or client_assertion)');
    }
    const client = await findClient(this.db, clientId);
    if (!client || client.disabled || !client.secretHash || !(await verifySecret(secret, client.secretHash))) {
      throw new OAuthError(401, 'invalid_client', 'Unknown client or wrong secret');
    }
    return client;
  }

  private async authenticateAssertion(form: Record<string, string>, tokenUrl: string): Promise<OAuthClient> {
    if (form.client_assertion_type !== JWT_BEARER_ASSERTION || !form.client_assertion) {
      throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${JWT_BEARER_ASSERTION}`);
    }
    let clientId: string;
    try {
      clientId = String(decodeJwt(form.client_assertion).iss ?? '');
    } catch {
      throw new OAuthError(401, 'invalid_client', 'client_assertion is not a JWT');
    }
    const client = await findClient(this.db, clientId);
    if (!client || client.disabled || !client.jwks) {
      throw new OAuthError(401, 'invalid_client', 'Unknown client or no JWKS registered for it');
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(form.client_assertion, createLocalJWKSet(client.jwks), {
        issuer: client.id,
        subject: client.id,
        audience: tokenUrl,
        maxTokenAge: '5m',
      }));
    } catch (err) {
      throw new OAuthError(401, 'invalid_client', `client_assertion rejected: ${(err as Error).message}`);
    }
    this.rejectReplay(String(payload.jti ?? ''), Number(payload.exp ?? 0));
    return client;
  }

  /** A signed assertion may be used once (SMART Backend Services requires jti uniqueness). */
  private rejectReplay(jti: string, exp: number): void {
    if (!jti) {
      throw new OAuthError(401, 'invalid_client', 'client_assertion must carry a jti');
    }
    const now = Date.now() / 1000;
    for (const [id, expiry] of this.usedAssertionIds) {
      if (expiry < now) {
        this.usedAssertionIds.delete(id);
      }
    }
    if (this.usedAssertionIds.has(jti)) {
      throw new OAuthError(401, 'invalid_client', 'client_assertion jti has already been used');
    }
    this.usedAssertionIds.set(jti, exp || now + 300);
  }
}

const optional = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** The AuthContext an access token's claims describe (user fields only for tokens issued to a user). */
function contextOf(payload: JWTPayload): AuthContext {
  const context: AuthContext = { clientId: String(payload.client_id ?? payload.sub), scopes: parseScopes(String(payload.scope ?? '')) };
  const role = optional(payload.role);
  if (role) context.user = { id: String(payload.sub), role, ...(optional(payload.fhirUser) ? { fhirUser: optional(payload.fhirUser) } : {}) };
  const patient = optional(payload.patient);
  if (patient) context.patient = patient;
  const purposeOfUse = optional(payload.purpose_of_use);
  if (purposeOfUse) context.purposeOfUse = purposeOfUse;
  const organization = optional(payload.organization);
  if (organization) context.organization = organization;
  const tokenId = optional(payload.jti);
  if (tokenId) context.tokenId = tokenId;
  return context;
}
