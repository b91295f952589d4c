import * as oidc from 'openid-client';
import type { SqlExecutor } from '../store/database.js';
import { findUserByEmail, findUserByOidcSubject, linkOidcSubject, type DirectoryUser } from '../users/user-directory.js';

export interface FederationSettings {
  issuer: string;
  clientId: string;
  clientSecret?: string;
}

/** What the upstream provider vouched for. */
export interface UpstreamIdentity {
  issuer: string;
  subject: string;
  email?: string;
  emailVerified: boolean;
}

/** Per sign-in values the callback must check (kept in a signed cookie between the redirect and the callback). */
export interface FederationChecks {
  codeVerifier: string;
  state: string;
  nonce: string;
}

/**
 * Sign-in with the community's OpenID Connect provider: Tessera is a relying party (authorization code
 * flow with PKCE, state and nonce; openid-client validates the id_token). The provider's metadata is
 * discovered on first use, and again after a failure.
 */
export class FederatedSignIn {
  private configuration?: Promise<oidc.Configuration>;

  constructor(private readonly settings: FederationSettings) {}

  get issuer(): string {
    return this.settings.issuer;
  }

  private config(): Promise<oidc.Configuration> {
    if (!this.configuration) {
      const issuer = new URL(this.settings.issuer);
      // Plain http only to a loopback provider (development, tests); anything else must be https.
      const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(issuer.hostname);
      const auth = this.settings.clientSecret ? oidc.ClientSecretBasic(this.settings.clientSecret) : oidc.None();
      this.configuration = oidc.discovery(issuer, this.settings.clientId, undefined, auth, loopback ? { execute: [oidc.allowInsecureRequests] } : undefined);
      this.configuration.catch(() => (this.configuration = undefined));
    }
    return this.configuration;
  }

  async start(callbackUrl: string): Promise<{ url: string; checks: FederationChecks }> {
    const config = await this.config();
    const checks = { codeVerifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: callbackUrl,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
      state: checks.state,
      nonce: checks.nonce,
    });
    return { url: url.toString(), checks };
  }

  /** `currentUrl`: the callback URL as the public base URL names it, with the query the provider sent. */
  async finish(currentUrl: URL, checks: FederationChecks): Promise<UpstreamIdentity> {
    const config = await this.config();
    const tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: checks.codeVerifier,
      expectedState: checks.state,
      expectedNonce: checks.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('The provider returned no id_token');
    // A conformant provider may keep scope claims out of the id_token (code flow): then ask UserInfo,
    // which openid-client checks is about the same subject.
    const profile = typeof claims.email === 'string' ? claims : await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    return {
      issuer: claims.iss,
      subject: claims.sub,
      email: typeof profile.email === 'string' ? profile.email : undefined,
      emailVerified: profile.email_verified === true,
    };
  }
}

/**
 * The directory user an upstream identity is: the one linked to its subject, else the one whose email the
 * provider verified (which links the subject for next time). An identity that is neither is refused:
 * being known to the community's provider does not make someone a user of the exchange.
 */
export async function directoryUserFor(db: SqlExecutor, identity: UpstreamIdentity): Promise<DirectoryUser | undefined> {
  const linked = await findUserByOidcSubject(db, identity.issuer, identity.subject);
  if (linked) return linked;
  if (!identity.email || !identity.emailVerified) return undefined;
  const byEmail = await findUserByEmail(db, identity.email);
  // A user already linked to another subject of this provider is not re-linked by email.
  if (!byEmail || (byEmail.oidcSubject && byEmail.oidcIssuer === identity.issuer)) return undefined;
  await linkOidcSubject(db, byEmail.id, identity.issuer, identity.subject);
  return byEmail;
}
