import type { Resource } from '@medplum/fhirtypes';
import { requirePermission, type Interaction } from '../security/scopes.js';
import type { AuthContext } from '../security/token-service.js';

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
  baseUrl: string;
}

export interface FhirResponse {
  status: number;
  body?: Resource;
  /** A body already serialised as JSON (large bundles assembled from stored JSON text). */
  rawBody?: string;
  location?: string;
  etag?: string;
  lastModified?: string;
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

/** Checks the caller's scopes for an interaction on a type (requests without auth come from the system). */
export function authorize(req: FhirRequest, type: string, interaction: Interaction): void {
  if (req.auth) {
    requirePermission(req.auth.scopes, type, interaction);
  }
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
}
