import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { OAuthError } from '../auth/oauth-error.js';
import { cookie, readCookie } from '../auth/sign-in-state.js';
import type { LoginAttempt } from '../audit/audit-record.js';
import type { Database } from '../store/database.js';
import type { TokenService } from '../security/token-service.js';
import { portalClientId } from './portal-routes.js';

/** The portal's refresh token: HttpOnly (no script reads it), sent only to this endpoint, only same-site. */
export const PORTAL_REFRESH_COOKIE = 'tessera_portal_refresh';
const COOKIE_PATH = '/oauth/session';
/** The header the portal sends: a page of another site cannot send it without a CORS preflight, which this server never grants. */
export const PORTAL_HEADER = 'x-tessera-portal';

/**
 * The token endpoint for the portal alone (decision 0026): the same grants as `/oauth/token`
 * (authorization_code, refresh_token), but the refresh token never reaches the page's script. It is
 * set as an HttpOnly, SameSite=Strict cookie limited to this path, and read from there to refresh. So
 * the page keeps its access token in memory only and, after a reload, gets a new one without asking the
 * user again; a refresh may declare another purpose of use the user's role allows (per patient).
 */
export function registerPortalSession(
  app: FastifyInstance,
  options: { db: Database; tokens: TokenService; base: () => string; recordLogin: (req: FastifyRequest, attempt: Omit<LoginAttempt, 'requestId'>) => Promise<void> },
): void {
  const refreshCookie = (value: string, maxAgeSeconds: number) =>
    cookie(PORTAL_REFRESH_COOKIE, value, { path: COOKIE_PATH, secure: options.base().startsWith('https:'), maxAgeSeconds, sameSite: 'Strict' });
  const refuse = (reply: FastifyReply, status: number, error: string, description: string) =>
    reply.status(status).header('cache-control', 'no-store').send({ error, error_description: description });
  const formOf = (req: FastifyRequest): Record<string, string> => Object.fromEntries(new URLSearchParams(typeof req.body === 'string' ? req.body : ''));

  app.post('/oauth/session', async (req, reply) => {
    if (req.headers[PORTAL_HEADER] !== '1') return refuse(reply, 403, 'access_denied', `This endpoint serves the portal (header ${PORTAL_HEADER})`);
    const clientId = await portalClientId(options.db);
    const form = formOf(req);
    if (form.grant_type !== 'authorization_code' && form.grant_type !== 'refresh_token') return refuse(reply, 400, 'unsupported_grant_type', 'grant_type must be authorization_code or refresh_token');
    const refresh = readCookie(req.headers.cookie, PORTAL_REFRESH_COOKIE);
    // No session in this browser is the usual first visit, not an error: 204, nothing issued.
    if (form.grant_type === 'refresh_token' && !refresh) return reply.status(204).header('cache-control', 'no-store').send();
    const grant: Record<string, string> = {
      grant_type: form.grant_type,
      client_id: clientId ?? '',
      ...(form.grant_type === 'authorization_code' ? { code: form.code ?? '', redirect_uri: form.redirect_uri ?? '', code_verifier: form.code_verifier ?? '' } : { refresh_token: refresh as string }),
      ...(form.purpose_of_use ? { purpose_of_use: form.purpose_of_use } : {}),
    };
    try {
      if (!clientId) throw new OAuthError(400, 'invalid_client', 'The portal has no client yet (read /portal/config.json first)');
      const { refresh_token: refreshToken, ...token } = await options.tokens.issue(grant, undefined, options.base());
      const claims = decodeJwt(token.access_token);
      await options.recordLogin(req, { method: 'token', clientId, user: { id: String(claims.sub), role: String(claims.role), fhirUser: typeof claims.fhirUser === 'string' ? claims.fhirUser : undefined }, status: 200, tokenId: claims.jti });
      if (refreshToken) reply.header('set-cookie', refreshCookie(refreshToken, 12 * 3600));
      return reply.header('cache-control', 'no-store').send(token);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      await options.recordLogin(req, { method: 'token', clientId: clientId ?? undefined, status: err.status });
      // A refresh token refused (expired, revoked, reused) is of no further use: forget it. A refused
      // purpose (invalid_request) is refused before the token is used: the session goes on.
      if (form.grant_type === 'refresh_token' && err.error === 'invalid_grant') reply.header('set-cookie', refreshCookie('', 0));
      return refuse(reply, err.status, err.error, err.message);
    }
  });

  // Sign-out: the grant is revoked (its access tokens stop at once) and the cookie cleared.
  app.post('/oauth/session/end', async (req, reply) => {
    if (req.headers[PORTAL_HEADER] !== '1') return refuse(reply, 403, 'access_denied', `This endpoint serves the portal (header ${PORTAL_HEADER})`);
    const refresh = readCookie(req.headers.cookie, PORTAL_REFRESH_COOKIE);
    const clientId = await portalClientId(options.db);
    if (refresh && clientId) {
      try {
        await options.tokens.revoke({ token: refresh, client_id: clientId }, undefined, options.base());
      } catch (err) {
        // The portal's client disabled: its grants are void already; the cookie is cleared all the same.
        if (!(err instanceof OAuthError)) throw err;
      }
    }
    return reply.header('set-cookie', refreshCookie('', 0)).header('cache-control', 'no-store').status(204).send();
  });
}
