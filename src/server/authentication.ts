import type { FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, unauthorized } from '../fhir/outcome.js';
import type { CallerLookup } from '../auth/token-status.js';
import type { AuthContext, TokenService } from '../security/token-service.js';
import type { ClientRateLimiter } from './client-rate-limit.js';
import { PORTAL_ROUTES } from './portal-routes.js';

/** Route patterns anyone may call: health probes, discovery documents and the CapabilityStatement. */
const PUBLIC_ROUTES = new Set(['/healthz', '/readyz', '/fhir/.well-known/smart-configuration', '/fhir/metadata']);

/**
 * Public besides those: the authorization server's own endpoints (`/oauth/...`: token, revocation,
 * introspection, sign-in), which authenticate clients and users themselves, `/.well-known/...`, the
 * portal's static files (its data requests carry the user's token like any app's), and `/cds-services`
 * (discovery; the services verify the CDS client's own JWT or our access token, and apply the client's
 * rate limit themselves: server/cds-hooks.ts).
 */
function isPublic(route: string): boolean {
  return PUBLIC_ROUTES.has(route) || PORTAL_ROUTES.has(route) || route.startsWith('/oauth/') || route.startsWith('/.well-known/') || route.startsWith('/cds-services');
}

/**
 * Bearer-token authentication (and the client's rate limit) as an `onRequest` hook: it runs before the
 * body is read, so a request without a valid token costs its headers, not its body. Every route is
 * authenticated unless listed as public above; a path no route has goes on to the 404.
 */
export class BearerAuthentication {
  private readonly contexts = new WeakMap<FastifyRequest, AuthContext>();

  constructor(
    private readonly tokens: TokenService,
    private readonly limiter: ClientRateLimiter | undefined,
    private readonly sendError: (reply: FastifyReply, err: FhirError) => FastifyReply,
    /**
     * Facts the request's access policy reads, asked with the token's status (one round trip less on
     * PostgreSQL). Only for requests without a body: a body may take long to arrive, and facts read
     * before it would be older than the policy built after it.
     */
    private readonly alongside?: CallerLookup,
  ) {}

  readonly onRequest = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const route = req.routeOptions.url;
    if (route === undefined || isPublic(route)) {
      return undefined;
    }
    let auth: AuthContext;
    try {
      auth = await this.verify(req.headers.authorization, hasBody(req) ? undefined : this.alongside);
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      // The body is left unread: closing the connection spares reading (and the client sending) the rest of it.
      if (hasBody(req)) reply.header('connection', 'close');
      // Returning the reply (sent) ends the request here: fastify runs neither the parser nor the handler.
      return this.sendError(reply, err);
    }
    // Known from here on, also when throttled: the audit record of a 429 names the client.
    this.contexts.set(req, auth);
    const throttled = this.limiter?.throttle(auth.clientId);
    if (throttled) {
      if (hasBody(req)) reply.header('connection', 'close');
      reply.header('retry-after', String(throttled.retryAfter));
      return this.sendError(reply, throttled.error);
    }
    return undefined;
  };

  /** The caller the hook identified, if it did (the audit record of a refused request has none). */
  callerOf(req: FastifyRequest): AuthContext | undefined {
    return this.contexts.get(req);
  }

  /** The AuthContext the hook established for this request (an authenticated route's handler asks for it). */
  readonly contextOf = async (req: FastifyRequest): Promise<AuthContext> => {
    const auth = this.contexts.get(req);
    if (!auth) throw unauthorized('A bearer access token is required (see /.well-known/smart-configuration)');
    return auth;
  };

  private async verify(header: string | undefined, alongside: CallerLookup | undefined): Promise<AuthContext> {
    if (!header?.startsWith('Bearer ')) {
      throw unauthorized('A bearer access token is required (see /.well-known/smart-configuration)');
    }
    try {
      return await this.tokens.verify(header.slice(7), alongside);
    } catch {
      throw unauthorized('The access token is invalid or expired');
    }
  }
}

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}
