import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, fhirError, unauthorized } from '../fhir/outcome.js';
import type { TokenService, AuthContext } from '../security/token-service.js';
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
import type { SigningKey } from '../security/signing-key.js';
import type { LockoutPolicy } from '../users/lockout.js';
import type { FederatedSignIn } from '../auth/federation.js';
import { registerOAuthRoutes } from './oauth-routes.js';
import { publicBaseUrl } from './public-base-url.js';

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
  /**
   * Public base URL (e.g. https://hie.example.org). The OAuth issuer and endpoints use it, or the bound
   * address when absent (never the Host header); FHIR links fall back to the Host header when absent.
   */
  baseUrl?: string;
  bodyLimit: number;
  logLevel: string;
  version: string;
  /** Where JSON log lines go (stdout by default); tests capture them to check that no PHI is logged. */
  logStream?: NodeJS.WritableStream;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

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

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await options.db.query('SELECT 1 AS ok');
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'unavailable' });
    }
  });

  registerOAuthRoutes(app, {
    db: options.db,
    repo: options.repo,
    tokens: options.tokens,
    key: options.signingKey,
    baseUrl: () => publicBaseUrl(app, options.baseUrl),
    lockout: options.lockout,
    federation: options.federation,
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
  const authenticate = async (req: FastifyRequest): Promise<AuthContext> => {
    const header = req.headers.authorization;
    if (!header?.startsWith('Bearer ')) {
      throw unauthorized('A bearer access token is required (see /.well-known/smart-configuration)');
    }
    try {
      return await options.tokens.verify(header.slice(7));
    } catch {
      throw unauthorized('The access token is invalid or expired');
    }
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = await authenticate(req);
    const url = req.url;
    const q = url.indexOf('?');
    const path = (q >= 0 ? url.slice(0, q) : url).replace(/^\/fhir\/?/, '');
    const rawQuery = q >= 0 ? url.slice(q + 1) : '';
    const h = req.headers;
    const fhirReq: FhirRequest = {
      method: req.method,
      segments: path.split('/').filter(Boolean).map(decodeURIComponent),
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
      baseUrl: `${origin(req, options.baseUrl)}/fhir`,
    };
    // A participant's writes are logged and attributed (meta.source, Provenance) like its HL7 messages.
    const participant = await attribution.participantFor(fhirReq);
    const res = participant ? await attribution.dispatch(participant, fhirReq, dispatch) : await dispatch(options.repo, fhirReq);
    return sendFhir(reply, res);
  };
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/fhir', handler: handle });
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/fhir/*', handler: handle });
  registerCcdaRoutes(app, options.repo, options.ccda, options.ccdaMaxBytes, authenticate);
  registerInterfaceRoutes(app, options.repo, { hl7v2: options.intake, ccda: options.ccda }, authenticate);
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
