import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, fhirError, unauthorized } from '../fhir/outcome.js';
import type { TokenService, AuthContext } from '../security/token-service.js';
import { OAuthError } from '../security/token-service.js';
import type { Database } from '../store/database.js';
import type { Repository } from '../store/repository.js';
import { PatientLinker } from '../mpi/patient-linker.js';
import { capabilityStatement } from './capability.js';
import type { FhirRequest, FhirResponse } from '../engine/fhir-request.js';
import { dispatch } from '../engine/fhir-router.js';
import type { Hl7v2Intake } from '../ingest/hl7v2-intake.js';
import { registerInterfaceRoutes } from './interface-routes.js';
import { CDA_MEDIA_TYPES, registerCcdaRoutes } from './ccda-routes.js';
import type { CcdaIntake } from '../ingest/ccda-intake.js';
import { FhirAttribution } from '../participants/fhir-attribution.js';
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { AuditLog } from '../audit/audit-log.js';
import { auditRecordFor, routeAuditRecord, tokenAuditRecord, type AuditedResult } from '../audit/audit-record.js';

export interface HttpOptions {
  db: Database;
  repo: Repository;
  intake: Hl7v2Intake;
  ccda: CcdaIntake;
  /** Largest C-CDA document accepted (bytes). */
  ccdaMaxBytes: number;
  tokens: TokenService;
  /** Every FHIR interaction and token request is recorded here before it is answered (absent: audit off). */
  audit?: AuditLog;
  /** Public base URL (e.g. https://hie.example.org); derived from the Host header when absent. */
  baseUrl?: string;
  bodyLimit: number;
  logLevel: string;
  version: string;
  /** Where JSON log lines go (stdout by default); tests capture them to check that no PHI is logged. */
  logStream?: NodeJS.WritableStream;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
/** Routes that disclose nothing about anyone (probes, discovery documents): not audited. */
const UNAUDITED_ROUTES = new Set(['/healthz', '/readyz', '/fhir/metadata', '/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration']);

function origin(req: FastifyRequest, configured?: string): string {
  return configured ?? `${req.protocol}://${req.headers.host ?? 'localhost'}`;
}

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
    try {
      done(null, JSON.parse(body));
    } catch (err) {
      done(badRequest(`Malformed JSON: ${(err as Error).message}`));
    }
  };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'application/fhir+json', 'application/json-patch+json'], { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser(CDA_MEDIA_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof FhirError) {
      return sendOutcome(reply, err);
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
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  const audit = options.audit;
  if (audit) {
    app.addHook('onSend', async (req, reply, payload) => {
      const route = req.routeOptions?.url;
      if (!audited.has(req) && !(route && UNAUDITED_ROUTES.has(route))) {
        audited.add(req);
        await audit.record(routeAuditRecord(req.method, route ?? 'unmatched', callers.get(req), reply.statusCode, req.id));
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

  const smartConfiguration = async (req: FastifyRequest) => {
    const base = origin(req, options.baseUrl);
    return {
      token_endpoint: `${base}/oauth/token`,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384', 'RS256', 'ES256'],
      grant_types_supported: ['client_credentials'],
      scopes_supported: ['system/*.cruds', 'system/*.rs', 'system/*.read', 'system/*.write'],
      capabilities: ['client-confidential-asymmetric', 'client-confidential-symmetric', 'permission-v2', 'permission-v1'],
    };
  };
  app.get('/.well-known/smart-configuration', smartConfiguration);
  app.get('/fhir/.well-known/smart-configuration', smartConfiguration);

  app.post('/oauth/token', async (req, reply) => {
    const form = Object.fromEntries(new URLSearchParams(typeof req.body === 'string' ? req.body : ''));
    const requestId = req.id;
    audited.add(req);
    try {
      const token = await options.tokens.issue(form, req.headers.authorization, `${origin(req, options.baseUrl)}/oauth/token`);
      const claims = decodeJwt(token.access_token);
      await options.audit?.record(tokenAuditRecord(String(claims.client_id ?? claims.sub), 200, requestId, claims.jti));
      return reply.header('cache-control', 'no-store').send(token);
    } catch (err) {
      if (err instanceof OAuthError) {
        await options.audit?.record(tokenAuditRecord(claimedClientId(form, req.headers.authorization), err.status, requestId));
        return reply.status(err.status).send({ error: err.error, error_description: err.message });
      }
      throw err;
    }
  });

  // Serialised once per base URL: the statement lists every resource type and search parameter (8 ms a time).
  const capabilityJson = new Map<string, string>();
  app.get('/fhir/metadata', async (req, reply) => {
    const baseUrl = `${origin(req, options.baseUrl)}/fhir`;
    let json = capabilityJson.get(baseUrl);
    if (json === undefined) {
      json = JSON.stringify(capabilityStatement(baseUrl, options.version, { mpi: !!options.repo.observerOf(PatientLinker) }));
      if (capabilityJson.size < 16) {
        capabilityJson.set(baseUrl, json);
      }
    }
    return reply.type(FHIR_JSON).send(json);
  });

  const attribution = new FhirAttribution(options.repo);
  const callers = new WeakMap<FastifyRequest, AuthContext>();
  const authenticate = async (req: FastifyRequest): Promise<AuthContext> => {
    const header = req.headers.authorization;
    if (!header?.startsWith('Bearer ')) {
      throw unauthorized('A bearer access token is required (see /.well-known/smart-configuration)');
    }
    let auth: AuthContext;
    try {
      auth = await options.tokens.verify(header.slice(7));
    } catch {
      throw unauthorized('The access token is invalid or expired');
    }
    callers.set(req, auth);
    return auth;
  };

  // The event of a request is committed before the reply leaves (no answered request without its event).
  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const requestId = req.id;
    audited.add(req);
    const url = req.url;
    const q = url.indexOf('?');
    const path = (q >= 0 ? url.slice(0, q) : url).replace(/^\/fhir\/?/, '');
    const rawQuery = q >= 0 ? url.slice(q + 1) : '';
    const target = { method: req.method, segments: safeSegments(path), rawQuery };
    let auth: AuthContext | undefined;
    let result: AuditedResult;
    try {
      auth = await authenticate(req);
      result = { response: await answer(req, target, auth) };
    } catch (error) {
      result = { error };
    }
    await options.audit?.record(auditRecordFor({ ...target, auth }, result, requestId));
    if ('error' in result) throw result.error;
    return sendFhir(reply, result.response);
  };
  const answer = async (req: FastifyRequest, target: { method: string; segments: string[]; rawQuery: string }, auth: AuthContext): Promise<FhirResponse> => {
    const { rawQuery } = target;
    const h = req.headers;
    const fhirReq: FhirRequest = {
      ...target,
      query: new URLSearchParams(rawQuery),
      body: req.body,
      ifMatch: h['if-match'] as string | undefined,
      ifNoneExist: h['if-none-exist'] as string | undefined,
      ifNoneMatch: h['if-none-match'] as string | undefined,
      ifModifiedSince: h['if-modified-since'] as string | undefined,
      prefer: h.prefer as string | undefined,
      contentType: h['content-type'],
      auth,
      baseUrl: `${origin(req, options.baseUrl)}/fhir`,
    };
    // A participant's writes are logged and attributed (meta.source, Provenance) like its HL7 messages.
    const participant = await attribution.participantFor(fhirReq);
    return participant ? attribution.dispatch(participant, fhirReq, dispatch) : dispatch(options.repo, fhirReq);
  };
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/fhir', handler: handle });
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/fhir/*', handler: handle });
  registerCcdaRoutes(app, options.repo, options.ccda, options.ccdaMaxBytes, authenticate);
  registerInterfaceRoutes(app, options.repo, { hl7v2: options.intake, ccda: options.ccda }, authenticate);
  return app;
}

/** Path segments, percent-decoded; a malformed escape stays as sent (it then names no resource and the engine says so). */
function safeSegments(path: string): string[] {
  return path.split('/').filter(Boolean).map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  });
}

/** The client a refused token request claimed to be (form, HTTP Basic or assertion issuer), for its audit event. */
function claimedClientId(form: Record<string, string>, authorization: string | undefined): string | undefined {
  if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
    return decodeURIComponent(decoded.slice(0, Math.max(0, decoded.indexOf(':'))) || '') || undefined;
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
