import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { badRequest, forbidden, notFound } from '../fhir/outcome.js';
import type { Repository } from '../store/repository.js';
import type { SearchAccess } from '../search/search-engine.js';
import type { Interaction } from '../security/scopes.js';
import type { AuthContext } from '../security/token-service.js';
import { AccessPolicy } from './access-policy.js';

const SYSTEM_POLICY = AccessPolicy.SYSTEM;

/**
 * A FHIR interaction independent of its transport: an HTTP request and a Bundle entry both become one of
 * these, so that both go through exactly the same checks and write path.
 */
export interface FhirRequest {
  method: string;
  /** Path segments after the FHIR base, e.g. ['Patient', '123', '_history']. */
  segments: string[];
  query: URLSearchParams;
  body?: unknown;
  /** The raw query string (without '?'), for self links and search parsing. */
  rawQuery: string;
  ifMatch?: string;
  ifNoneExist?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  prefer?: string;
  contentType?: string;
  auth?: AuthContext;
  /** The access policy for `auth`, worked out once when the engine first takes the request (dispatch). */
  policy?: AccessPolicy;
  baseUrl: string;
}

/** A URL path's segments, percent-decoded; a malformed escape is the caller's error (400). */
export function pathSegments(path: string): string[] {
  return path
    .split('/')
    .filter(Boolean)
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        throw badRequest(`Malformed percent-encoding in the URL path: "${segment}"`);
      }
    });
}

/**
 * A FHIR interaction addressed by a relative URL (`Patient/123`, `Patient?name=x`), as callers inside the
 * exchange make them (the CLI, the sign-in pages, tests).
 */
export function requestFor(method: string, url: string, options: { baseUrl: string; auth?: AuthContext; body?: unknown }): FhirRequest {
  const q = url.indexOf('?');
  const rawQuery = q >= 0 ? url.slice(q + 1) : '';
  return { method, segments: pathSegments(q >= 0 ? url.slice(0, q) : url), rawQuery, query: new URLSearchParams(rawQuery), body: options.body, auth: options.auth, baseUrl: options.baseUrl };
}

export interface FhirResponse {
  status: number;
  body?: Resource;
  /** A body already serialised as JSON (large bundles assembled from stored JSON text). */
  rawBody?: string;
  location?: string;
  etag?: string;
  lastModified?: string;
  /** Warnings about a successful write whose body is the resource (a Bundle entry carries them in response.outcome). */
  outcome?: OperationOutcome;
}

export function preferHeader(prefer: string | undefined, key: string): string | undefined {
  for (const part of (prefer ?? '').split(/[;,]/)) {
    const [k, v] = part.trim().split('=');
    if (k === key) {
      return v?.trim();
    }
  }
  return undefined;
}

/** The request's access policy; the engine sets it before anything reads or writes (see dispatch). */
export function policyOf(req: FhirRequest): AccessPolicy {
  if (!req.policy) {
    if (!req.auth) {
      return SYSTEM_POLICY; // the server's own work: intake, replay, the CLI
    }
    throw new Error('The access policy of this request has not been worked out (requests enter through dispatch)');
  }
  return req.policy;
}

/**
 * The row conditions of the request's policy in the form searches take: what matches, counts, chains and
 * _has may look into (`s`), and what _include/_revinclude may add (`r`). Undefined for the system.
 */
export function searchAccess(req: FhirRequest): SearchAccess | undefined {
  const policy = policyOf(req);
  return policy === SYSTEM_POLICY
    ? undefined
    : {
        search: (type, alias) => policy.rows(type, 's', alias),
        read: (type, alias) => policy.rows(type, 'r', alias),
        withheld: (type, alias) => policy.withheldForLabels(type, 's', alias),
      };
}

/** Checks that the caller may do an interaction on some resources of a type (403 when not). */
export function authorize(req: FhirRequest, type: string, interaction: Interaction): void {
  policyOf(req).require(type, interaction);
}

/**
 * The interactions a write needs, one rule for single requests and transaction entries: a create `c`,
 * an update or patch `u`, a delete `d`; a conditional update `u` and `c` (it creates when nothing
 * matches). A write that finds its target by search criteria (If-None-Exist, conditional update or
 * delete) needs `s` as well: whether it creates, updates or fails tells the caller whether a match exists.
 */
export function writeInteractions(method: string, byCriteria: boolean): Interaction[] {
  const own: Record<string, Interaction[]> = { POST: ['c'], PUT: byCriteria ? ['u', 'c'] : ['u'], PATCH: ['u'], DELETE: ['d'] };
  return [...(own[method] ?? []), ...(byCriteria ? (['s'] as const) : [])];
}

/** Checks the caller's scopes for a write (see writeInteractions). */
export function authorizeWrite(req: FhirRequest, type: string, method: string, byCriteria: boolean): void {
  for (const interaction of writeInteractions(method, byCriteria)) authorize(req, type, interaction);
  if (type === 'Consent') {
    // A Consent decides who sees a person's record (a permit can lift the withholding of sensitive data):
    // among people, only the patient (their own: the patient scope's compartment check) and privacy
    // officers record one. Backend clients need a Consent write scope, which the operator grants to
    // systems trusted to record patients' consents (a participant's registration feed).
    policyOf(req).requireRole(CONSENT_AUTHORS, 'Recording a Consent');
  }
}

const CONSENT_AUTHORS = ['patient', 'privacy-officer'];

/**
 * Throws 404 unless the caller may reach the resource's current row: one that exists but lies outside the
 * caller's reach (another patient, a restricted record) answers as if it did not exist, so that its
 * existence is not disclosed either. A deleted resource is left to the interaction (404/410).
 */
export async function requireReachable(repo: Repository, req: FhirRequest, type: string, id: string, interaction: Interaction, options: { scopesOnly?: boolean } = {}): Promise<void> {
  const policy = policyOf(req);
  // scopesOnly: the scopes' reach alone, for break-the-glass, which lifts consent and labels but not scopes.
  const rows = options.scopesOnly ? policy.writableRows(type, interaction, 'r') : policy.rows(type, interaction, 'r');
  if (!rows) {
    return;
  }
  const found = await repo.sql.query<{ deleted: number; reachable: number }>(
    `SELECT r.deleted, CASE WHEN ${rows.sql} THEN 1 ELSE 0 END AS reachable FROM resource r WHERE r.type = ? AND r.id = ?`,
    [...rows.params, type, id],
  );
  // A deleted resource has no index rows left to decide by: only a caller who reaches every row of the
  // type sees that it was there.
  if (found.length && (found[0].deleted || !Number(found[0].reachable))) {
    throw notFound(`${type}/${id} not found`);
  }
}

/** A resource a write left behind, and what the write was. */
export interface WrittenResource {
  type: string;
  id: string;
  interaction: Interaction;
}

/**
 * Throws 403 unless every resource written lies within the scopes' reach for its write (see
 * AccessPolicy.writableRows): a patient app must not create or move data into another patient's record,
 * nor a granular token outside its restriction. Run inside the writing transaction, so that a refused
 * write rolls back.
 */
export async function requireWritable(repo: Repository, req: FhirRequest, written: readonly WrittenResource[]): Promise<void> {
  const policy = policyOf(req);
  for (const w of written) {
    const rows = policy.writableRows(w.type, w.interaction, 'r');
    if (!rows) continue;
    const found = await repo.sql.query(`SELECT 1 AS x FROM resource r WHERE r.type = ? AND r.id = ? AND r.deleted = 0 AND ${rows.sql}`, [w.type, w.id, ...rows.params]);
    if (!found.length) {
      throw forbidden(`The access token's scopes do not allow this ${w.interaction === 'c' ? 'create' : 'update'} of ${w.type}: the result lies outside its patient context or granular restriction`);
    }
  }
}

/** Whether any write of `type` by this request must be checked by requireWritable. */
export function writesNeedCheck(req: FhirRequest, type: string): boolean {
  const policy = policyOf(req);
  return policy.writableRows(type, 'c', 'r') !== undefined || policy.writableRows(type, 'u', 'r') !== undefined;
}

/** The id in a Location (`.../Type/id/_history/n`). */
export function idInLocation(location: string | undefined, type: string): string | undefined {
  const m = location ? new RegExp(`/${type}/([^/]+)(/_history/[^/]+)?$`).exec(location) : null;
  return m?.[1];
}

