import * as oidc from 'openid-client';

/**
 * The app's side of a SMART App Launch, done by openid-client: Tessera's configuration discovered from its
 * issuer (id_token signatures checked against its JWKS). `onTokenResponse` sees each response of the token
 * endpoint (to collect X-Request-Ids and token ids for the audit checks).
 */
export async function appConfig(issuer: string, clientId: string, secret?: string, onTokenResponse?: (res: Response) => Promise<void>): Promise<oidc.Configuration> {
  const config = await oidc.discovery(new URL(issuer), clientId, undefined, secret ? oidc.ClientSecretBasic(secret) : oidc.None(), { execute: [oidc.allowInsecureRequests] });
  oidc.enableNonRepudiationChecks(config);
  if (onTokenResponse) {
    config[oidc.customFetch] = async (url, options) => {
      const res = await fetch(url, options as RequestInit);
      if (new URL(url).pathname === '/oauth/token') await onTokenResponse(res.clone());
      return res;
    };
  }
  return config;
}

/** An authorization URL built by openid-client (PKCE S256, state, nonce, aud), and the checks it will apply to the answer. */
export async function startLaunch(config: oidc.Configuration, options: { fhirBase: string; redirectUri: string; scope: string; extra?: Record<string, string> }) {
  const checks = { pkceCodeVerifier: oidc.randomPKCECodeVerifier(), expectedState: oidc.randomState(), expectedNonce: oidc.randomNonce() };
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: options.redirectUri,
    scope: options.scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    aud: options.fhirBase,
    ...options.extra,
  });
  return { url, checks };
}
