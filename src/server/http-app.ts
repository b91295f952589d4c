import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, fhirError, notFound } from '../fhir/outcome.js';
import type { TokenService } from '../security/token-service.js';
import type { Database } from '../store/database.js';
import { isStatementTimeout, isUnstorableText } from '../store/postgres.js';
import type { Repository } from '../store/repository.js';
import { PatientLinker } from '../mpi/patient-linker.js';
import { jsonTextProblem } from '../fhir/json-limits.js';
import { capabilityStatement } from './capability.js';
import { pathSegments, type FhirRequest, type FhirResponse } from '../engine/fhir-request.js';
import type { Hl7v2Intake } from '../ingest/hl7v2-intake.js';
import { registerInterfaceRoutes } from './interface-routes.js';
import { registerCdsHooks } from './cds-hooks.js';
import { CDA_MEDIA_TYPES, registerCcdaRoutes } from './ccda-routes.js';
import type { CcdaIntake } from '../ingest/ccda-intake.js';
import { BearerAuthentication } from './authentication.js';
import { privacyFactsLookup } from '../consent/privacy-facts.js';
import { ClientRateLimiter } from './client-rate-limit.js';
import { listenOrigin } from './listen-origin.js';
import { RouteMethods } from './route-methods.js';
import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import { routeAuditRecord } from '../audit/audit-record.js';
import { FhirEngine } from '../engine/fhir-engine.js';
import { disclosureOf } from './route-disclosures.js';
import type { SigningKey } from '../security/signing-key.js';
import type { LockoutPolicy } from '../users/lockout.js';
import type { FederatedSignIn } from '../auth/federation.js';
import { registerOAuthRoutes } from './oauth-routes.js';
import { PORTAL_ROUTES, registerPortalRoutes } from './portal-routes.js';

export interface HttpOptions {
  db: Database;
  repo: Repository;
  intake: Hl7v2Intake;
  ccda: CcdaIntake;
  /** Largest C-CDA document accepted (bytes). */
  ccdaMaxBytes: number;
  tokens: TokenService;
  /** The key that signs tokens; its public half is published for id_token verification. */
  signingKey: SigningKey;
  /** Sign-in lockout after repeated failures. */
  lockout: LockoutPolicy;
  /** Federated sign-in with the community's OpenID Connect provider, when configured. */
  federation?: FederatedSignIn;
  /** Token requests and the routes outside the FHIR engine are recorded here before they are answered (absent: audit off). */
  audit?: AuditLog;
  /** Public base URL (e.g. https://hie.example.org); when absent, the address the server listens on (never the Host header). */
  baseUrl?: string;
  /** Requests per minute per client (0 or absent: no limit). */
  rateLimitPerMinute?: number;
  bodyLimit: number;
  logLevel: string;
  version: string;
  /** Where JSON log lines go (stdout by default); tests capture them to check that no PHI is logged. */
  logStream?: NodeJS.WritableStream;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
/** Routes that disclose nothing about anyone (probes, discovery documents): not audited. */
const UNAUDITED_ROUTES = new Set(['/cds-services', '/healthz', '/readyz', '/fhir/metadata', '/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration', '/.well-known/openid-configuration', '/.well-known/jwks.json']);

function sendOutcome(reply: FastifyReply, err: FhirError): FastifyReply {
  return reply.status(err.status).type(FHIR_JSON).send(err.outcome);
}

/**
 * The HTTP surface: FHIR REST under /fhir, the SMART token endpoint, and health probes. Logs carry method,
 * route, status and timing only: never bodies, query strings or identifiers (no PHI in server logs).
 */
export function buildHttpApp(options: HttpOptions): FastifyInstance {
  const app = Fastify({
    bodyLimit: options.bodyLimit,
    // Errors fastify answers before any route (a malformed percent-escape in the path): an OperationOutcome too.
    frameworkErrors: (err, _req, reply) => {
      sendOutcome(reply, fhirError(400, 'invalid', err.code === 'FST_ERR_BAD_URL' ? 'Malformed percent-encoding in the URL path' : err.message));
    },
    // A UUID per request: the X-Request-Id returned and stored in the request's AuditEvent (and the log's reqId).
    genReqId: () => randomUUID(),
    logger: {
      level: options.logLevel,
      stream: options.logStream,
      serializers: {
        req: (req) => ({ method: req.method, route: req.routeOptions?.url ?? 'unmatched', reqId: req.id }),
        res: (res) => ({ statusCode: res.statusCode }),
      },
    },
  });

  const parseJson = (_req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void): void => {
    if (!body.length) {
      done(null, undefined);
      return;
    }
    const problem = jsonTextProblem(body);
    if (problem) {
      done(badRequest(`${problem.message} (line ${problem.line})`));
      return;
    }
    try {
      done(null, JSON.parse(body));
    } catch (err) {
      done(badRequest(`Malformed JSON: ${(err as Error).message}`));
    }
  };
  const origin = (): string => options.baseUrl ?? listenOrigin(app.server);
  const allowed = new RouteMethods();
  app.addHook('onRoute', (route) => allowed.add(route.url, route.method));
  const limiter = options.rateLimitPerMinute ? new ClientRateLimiter(options.rateLimitPerMinute) : undefined;
  const authentication = new BearerAuthentication(options.tokens, limiter, sendOutcome, privacyFactsLookup);
  // Every answer carries its request id (X-Request-Id), refusals by the hooks below included.
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  // No route takes a NUL character (PostgreSQL text cannot hold one): refused before anything reads it.
  app.addHook('onRequest', async (req, reply) => (req.url.includes('%00') ? sendOutcome(reply, badRequest('The URL contains a NUL character (%00)')) : undefined));
  app.addHook('onRequest', authentication.onRequest);
  app.setNotFoundHandler((req, reply) => {
    const methods = allowed.allowedFor(req.url.split('?')[0]);
    if (methods.length) {
      return sendOutcome(reply.header('allow', methods.join(', ')), fhirError(405, 'not-supported', `${req.method} is not allowed here; allowed: ${methods.join(', ')}`));
    }
    return sendOutcome(reply, notFound(`No such endpoint: ${req.method} ${req.url.split('?')[0]}`));
  });

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'application/fhir+json', 'application/json-patch+json'], { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser(CDA_MEDIA_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof FhirError) {
      return sendOutcome(reply, err);
    }
    if (isUnstorableText(err)) {
      return sendOutcome(reply, badRequest('The request holds a character that cannot be stored or searched (such as NUL)'));
    }
    if (isStatementTimeout(err)) {
      // 503, not 500: nothing failed, the database stopped a statement that ran past its time (under load,
      // behind a lock, or a search too costly); the transaction rolled back, so nothing was stored, and the
      // same request may succeed later or narrowed. Not 4xx: the request itself may be valid.
      return sendOutcome(reply, fhirError(503, 'too-costly', 'The database stopped the request: it ran longer than the statement timeout allows. Nothing was changed; narrow the request or retry later'));
    }
    const e = err as { statusCode?: number; message: string; code?: string };
    if (e.statusCode === 413 || e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendOutcome(reply, fhirError(413, 'too-costly', `Request body exceeds the limit of ${req.routeOptions?.bodyLimit ?? options.bodyLimit} bytes`));
    }
    if (e.statusCode === 415 || e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendOutcome(reply, fhirError(415, 'not-supported', `Unsupported content type; send application/fhir+json (C-CDA documents: ${CDA_MEDIA_TYPES.join(', ')})`));
    }
    if (e.statusCode && e.statusCode < 500) {
      return sendOutcome(reply, fhirError(e.statusCode, 'invalid', e.message));
    }
    reply.log.error({ err: { message: e.message, code: e.code } }, 'unhandled error');
    return sendOutcome(reply, fhirError(500, 'exception', 'Internal server error'));
  });

  // Every request carries its id back (X-Request-Id), and every one but the probes and discovery documents
  // is audited before its answer leaves: the FHIR handler and the token endpoint record detailed events
  // themselves (`audited`); onSend records the others (C-CDA import, /messages, /participants, new routes).
  const audited = new WeakSet<FastifyRequest>();
  const audit = options.audit;
  if (audit) {
    app.addHook('onSend', async (req, reply, payload) => {
      const route = req.routeOptions?.url;
      if (!audited.has(req) && !(route && (UNAUDITED_ROUTES.has(route) || PORTAL_ROUTES.has(route)))) {
        audited.add(req);
        await audit.record(routeAuditRecord(req.method, route ?? 'unmatched', authentication.callerOf(req), reply.statusCode, req.id, disclosureOf(req)));
      }
      return payload;
    });
  }

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await options.db.query('SELECT 1 AS ok');
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'unavailable' });
    }
  });

  const engine = new FhirEngine(options.repo);
  registerOAuthRoutes(app, {
    engine,
    db: options.db,
    repo: options.repo,
    tokens: options.tokens,
    key: options.signingKey,
    baseUrl: origin,
    lockout: options.lockout,
    federation: options.federation,
    audit: options.audit,
    audited: (req) => audited.add(req),
  });

  // Serialised once per base URL: the statement lists every resource type and search parameter (8 ms a time).
  const capabilityJson = new Map<string, string>();
  app.get('/fhir/metadata', async (_req, reply) => {
    const baseUrl = `${origin()}/fhir`;
    let json = capabilityJson.get(baseUrl);
    if (json === undefined) {
      json = JSON.stringify(capabilityStatement(baseUrl, options.version, { mpi: !!options.repo.observerOf(PatientLinker) }));
      if (capabilityJson.size < 16) {
        capabilityJson.set(baseUrl, json);
      }
    }
    return reply.type(FHIR_JSON).send(json);
  });

  // The onRequest hook authenticated the request before its body was read; handlers take its AuthContext.
  const authenticate = authentication.contextOf;

  // The engine records the interaction's AuditEvent before it answers (no answered request without its event).
  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = await authenticate(req);
    const url = req.url;
    const q = url.indexOf('?');
    const path = (q >= 0 ? url.slice(0, q) : url).replace(/^\/fhir\/?/, '');
    const rawQuery = q >= 0 ? url.slice(q + 1) : '';
    const h = req.headers;
    const fhirReq: FhirRequest = {
      method: req.method,
      segments: pathSegments(path),
      rawQuery,
      query: new URLSearchParams(rawQuery),
      body: req.body,
      ifMatch: h['if-match'] as string | undefined,
      ifNoneExist: h['if-none-exist'] as string | undefined,
      ifNoneMatch: h['if-none-match'] as string | undefined,
      ifModifiedSince: h['if-modified-since'] as string | undefined,
      prefer: h.prefer as string | undefined,
      contentType: h['content-type'],
      auth,
      baseUrl: `${origin()}/fhir`,
    };
    audited.add(req);
    return sendFhir(reply, await engine.handle(fhirReq, req.id));
  };
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/fhir', handler: handle });
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/fhir/*', handler: handle });
  registerCdsHooks(app, { db: options.db, engine, tokens: options.tokens, origin, audited: (req) => audited.add(req), limiter });
  registerCcdaRoutes(app, options.repo, options.ccda, options.ccdaMaxBytes, authenticate);
  registerInterfaceRoutes(app, options.repo, { hl7v2: options.intake, ccda: options.ccda }, authenticate);
  registerPortalRoutes(app, options.db, origin);
  return app;
}

function sendFhir(reply: FastifyReply, res: FhirResponse): FastifyReply {
  if (res.etag) reply.header('etag', res.etag);
  if (res.lastModified) reply.header('last-modified', res.lastModified);
  if (res.location) reply.header('location', res.location);
  reply.status(res.status);
  if (res.rawBody !== undefined) {
    return reply.type(FHIR_JSON).send(res.rawBody);
  }
  if (res.body) {
    return reply.type(FHIR_JSON).send(res.body as Resource);
  }
  return reply.send();
}
