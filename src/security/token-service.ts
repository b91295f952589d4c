import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import type { Database } from '../store/database.js';
import { findClient, type OAuthClient } from './clients.js';
import { parseScope, parseScopes, scopeAllowed, type Scope } from './scopes.js';
import { verifySecret } from './secrets.js';
import { SIGNING_ALG, type SigningKey } from './signing-key.js';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_LIFETIME_SECONDS = 3600;
const VERIFIED_CACHE_SIZE = 10_000;
const ISSUER = 'tessera';

/** An OAuth error response (RFC 6749 §5.2). */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  scope: string;
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
  /** The directory's id of the user (built-in directory) or `issuer|subject` (federated sign-in). */
  id: string;
  /** The user's FHIR resource: `Practitioner/{id}`, `PractitionerRole/{id}`, `Patient/{id}` or `RelatedPerson/{id}`. */
  fhirUser?: string;
  /** clinician, privacy-officer, steward, interface-analyst, admin, patient (docs/governance.md). */
  role: string;
}

/**
 * SMART Backend Services token endpoint logic (client_credentials grant). Clients authenticate with a
 * secret (HTTP Basic or form fields) or with a JWT assertion signed by a key in their registered JWKS.
 */
export class TokenService {
  private readonly usedAssertionIds = new Map<string, number>();
  private readonly verified = new Map<string, { context: AuthContext; exp: number }>();

  constructor(
    private readonly db: Database,
    private readonly key: SigningKey,
  ) {}

  async issue(form: Record<string, string>, authorization: string | undefined, tokenUrl: string): Promise<TokenResponse> {
    if (form.grant_type !== 'client_credentials') {
      throw new OAuthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported');
    }
    const client = await this.authenticate(form, authorization, tokenUrl);
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
    const accessToken = await new SignJWT({ scope, client_id: client.id })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.key.kid, typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setSubject(client.id)
      .setAudience(ISSUER)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${TOKEN_LIFETIME_SECONDS}s`)
      .sign(this.key.privateKey);
    return { access_token: accessToken, token_type: 'bearer', expires_in: TOKEN_LIFETIME_SECONDS, scope };
  }

  /**
   * Verifies a bearer token and returns who it belongs to and what it may do. A verified token is
   * remembered until it expires: a client sends the same token on every request, and an ES256 signature
   * check per request is wasted work.
   */
  async verify(token: string): Promise<AuthContext> {
    const now = Date.now() / 1000;
    const cached = this.verified.get(token);
    if (cached && cached.exp > now) {
      return cached.context;
    }
    const { payload } = await jwtVerify(token, this.key.publicKey, { issuer: ISSUER, audience: ISSUER, algorithms: [SIGNING_ALG] });
    const context = { clientId: String(payload.sub), scopes: parseScopes(String(payload.scope ?? '')) };
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      this.verified.delete(this.verified.keys().next().value as string);
    }
    this.verified.set(token, { context, exp: Number(payload.exp ?? now) });
    return context;
  }

  private async authenticate(form: Record<string, string>, authorization: string | undefined, tokenUrl: string): Promise<OAuthClient> {
    if (form.client_assertion_type || form.client_assertion) {
      return this.authenticateAssertion(form, tokenUrl);
    }
    let clientId = form.client_id;
    let secret = form.client_secret;
    if (authorization?.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      clientId = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
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
