import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, preconditionFailed } from '../fhir/outcome.js';
import { isKnownResourceType } from '../fhir/resource-types.js';
import { validateFhirResource } from '../fhir/validation.js';
import { retryingConflicts } from '../store/database.js';
import { ID_RE, type Repository } from '../store/repository.js';
import { conditionalWriteLock, findByCriteria } from './crud.js';
import { authorize, authorizeWrite, idInLocation, requireWritable, writesNeedCheck, type FhirRequest, type FhirResponse } from './fhir-request.js';
import { resourceResponse, resourceUrl, responseBody } from './responses.js';
import { newResourceId } from '../store/resource-id.js';
import { collectConditionalReferences, rewriteReferences } from './bundle-references.js';

export type Dispatch = (repo: Repository, req: FhirRequest) => Promise<FhirResponse>;

const STATUS_TEXT: Record<number, string> = { 200: '200 OK', 201: '201 Created', 204: '204 No Content', 304: '304 Not Modified' };
/** Transaction processing order (FHIR R4 http.html#trules): deletes, creates, updates, then reads. */
const METHOD_ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface ParsedEntry {
  index: number;
  method: string;
  type: string;
  segments: string[];
  rawQuery: string;
  entry: BundleEntry;
}

function parseEntry(entry: BundleEntry, index: number, baseUrl: string): ParsedEntry {
  const request = entry.request;
  if (!request?.method || !request.url) {
    throw entryError(index, badRequest('Every entry needs request.method and request.url'));
  }
  let url = request.url.startsWith(baseUrl) ? request.url.slice(baseUrl.length) : request.url;
  url = url.replace(/^\//, '');
  const [path, rawQuery = ''] = url.split('?', 2);
  const segments = path.split('/').filter(Boolean);
  if (!segments.length || !isKnownResourceType(segments[0])) {
    throw entryError(index, badRequest(`request.url "${request.url}" does not name a resource type`));
  }
  return { index, method: request.method, type: segments[0], segments, rawQuery, entry };
}

/** The version an update (PUT, PATCH) wrote: its id from the URL, or from the resource answered for a conditional update. */
function updatedVersion(etag: string | undefined, body: Resource | undefined, baseUrl: string, p: ParsedEntry): string | undefined {
  const version = /^W\/"(\d+)"$/.exec(etag ?? '')?.[1];
  const id = p.segments[1] ?? (body?.resourceType === p.type ? body.id : undefined);
  return (p.method === 'PUT' || p.method === 'PATCH') && version && id ? `${baseUrl}/${p.type}/${id}/_history/${version}` : undefined;
}

function entryError(index: number, err: unknown): FhirError {
  if (err instanceof FhirError) {
    return new FhirError(
      err.status,
      err.issues.map((i) => ({ ...i, diagnostics: `Bundle.entry[${index}]: ${i.diagnostics ?? i.details?.text ?? ''}`, expression: [`Bundle.entry[${index}]`] })),
    );
  }
  throw err;
}

/**
 * A transaction or batch entry's response. An update's entry names the version it wrote, as a create's
 * does (the R4 transaction-response example gives PUT entries a location): a plain PUT answers without a
 * Location header, and without it the Provenance of a message listed the resources it created but not
 * the ones it updated.
 */
function entryResponse(res: FhirResponse, baseUrl: string, p: ParsedEntry): BundleEntry {
  const body = responseBody(res);
  const response: BundleEntryResponse = { status: STATUS_TEXT[res.status] ?? String(res.status) };
  const location = res.location ?? updatedVersion(res.etag, body, baseUrl, p);
  if (location) response.location = location;
  if (res.etag) response.etag = res.etag;
  if (res.lastModified) response.lastModified = new Date(res.lastModified).toISOString();
  const out: BundleEntry = { response };
  if (body?.resourceType === 'OperationOutcome') {
    response.outcome = body;
  } else if (body) {
    out.resource = body;
    if (res.outcome) response.outcome = res.outcome;
  }
  return out;
}

export async function processBundle(repo: Repository, req: FhirRequest, dispatch: Dispatch): Promise<Bundle> {
  const bundle = req.body as Bundle;
  if (!bundle || bundle.resourceType !== 'Bundle') {
    throw badRequest('POST to the base URL takes a Bundle of type transaction or batch');
  }
  if (bundle.type === 'transaction') {
    // All or nothing: a failing entry fails the Bundle, so its entries need no savepoint of their own.
    const run = () => repo.transaction((tx) => processTransaction(tx.joined(), bundle, req, dispatch));
    // A transaction of its own (not a message's inside a batch) is run again if PostgreSQL ended it for a
    // deadlock: conditional writes and the patient index lock what they write until the commit.
    return repo.inTransaction ? run() : retryingConflicts(repo.db, run);
  }
  if (bundle.type === 'batch') {
    return processBatch(repo, bundle, req, dispatch);
  }
  throw badRequest(`Bundle.type must be transaction or batch, not "${bundle.type}"`);
}

function subRequest(req: FhirRequest, parsed: ParsedEntry, body: unknown): FhirRequest {
  const r = parsed.entry.request ?? { method: 'GET', url: '' };
  return {
    method: parsed.method,
    segments: parsed.segments,
    rawQuery: parsed.rawQuery,
    query: new URLSearchParams(parsed.rawQuery),
    body,
    ifMatch: r.ifMatch,
    ifNoneExist: r.ifNoneExist,
    ifNoneMatch: r.ifNoneMatch,
    ifModifiedSince: r.ifModifiedSince,
    prefer: req.prefer,
    auth: req.auth,
    policy: req.policy,
    baseUrl: req.baseUrl,
  };
}

async function processBatch(repo: Repository, bundle: Bundle, req: FhirRequest, dispatch: Dispatch): Promise<Bundle> {
  const entries: BundleEntry[] = [];
  for (const [index, entry] of (bundle.entry ?? []).entries()) {
    try {
      const parsed = parseEntry(entry, index, req.baseUrl);
      entries.push(entryResponse(await repo.transaction((tx) => dispatch(tx, subRequest(req, parsed, entry.resource))), req.baseUrl, parsed));
    } catch (err) {
      const e = err instanceof FhirError ? err : entryError(index, err);
      entries.push({ response: { status: String(e.status), outcome: e.outcome } });
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry: entries };
}

async function processTransaction(tx: Repository, bundle: Bundle, req: FhirRequest, dispatch: Dispatch): Promise<Bundle> {
  const parsed = (bundle.entry ?? []).map((e, i) => parseEntry(e, i, req.baseUrl));
  for (const p of parsed) {
    try {
      if (WRITE_METHODS.has(p.method)) authorizeWrite(req, p.type, p.method, writeCriteria(p) !== undefined);
    } catch (err) {
      throw entryError(p.index, err);
    }
  }
  // Conditional references (Patient?identifier=...) are resolved by searches: whether one resolves tells
  // the caller whether such a resource exists, so they need the search scope of their type, checked here
  // with the writes before anything runs.
  const conditional = new Set<string>();
  parsed.forEach((p) => collectConditionalReferences(p.entry.resource, conditional));
  for (const ref of conditional) authorize(req, ref.split('?', 1)[0], 's');
  // Every conditional write's criteria locked up front, in one order for all transactions (sorted): two
  // transactions conditionally writing the same record wait for each other instead of both creating it.
  const criteria = parsed.flatMap((p) => {
    const found = (p.method === 'POST' || p.method === 'PUT') && writeCriteria(p);
    return found ? [conditionalWriteLock(p.type, found)] : [];
  });
  if (criteria.length) await tx.sql.lock(...[...new Set(criteria)].sort());
  const references = new Map<string, string>();
  const assignedIds = new Map<number, string>();
  /** POST entries whose If-None-Exist matched an existing resource: entry index -> that resource. */
  const existingMatches = new Map<number, Resource>();
  /** POST entries that re-send a record already stored (Repository.existingFor): entry index -> its id. */
  const resent = new Map<number, string>();
  const targets = new Set<string>();

  // 1. Give every created resource its id up front, so that references between entries can be rewritten.
  for (const p of parsed) {
    const fullUrl = p.entry.fullUrl;
    let target: string | undefined;
    try {
      if (p.method === 'POST') {
        let id: string | undefined;
        if (p.entry.request?.ifNoneExist) {
          const matches = await findByCriteria(tx, p.type, subRequest(req, p, undefined), p.entry.request.ifNoneExist);
          if (matches.length > 1) {
            throw preconditionFailed(`If-None-Exist criteria match more than one ${p.type}`);
          }
          if (matches[0]) {
            existingMatches.set(p.index, matches[0]);
            id = matches[0].id;
          }
        }
        const body = p.entry.resource as Resource | undefined;
        if (!id && body?.resourceType === p.type) {
          id = await tx.existingFor(body);
          if (id) {
            resent.set(p.index, id);
          }
        }
        if (!id) {
          id = newResourceId();
          assignedIds.set(p.index, id);
        }
        target = `${p.type}/${id}`;
      } else if ((p.method === 'PUT' || p.method === 'PATCH' || p.method === 'DELETE') && p.segments.length === 2) {
        target = `${p.type}/${p.segments[1]}`;
      } else if (p.method === 'PUT' && p.rawQuery) {
        const matches = await findByCriteria(tx, p.type, subRequest(req, p, undefined), p.rawQuery);
        if (matches.length > 1) {
          throw preconditionFailed(`Conditional update criteria match more than one ${p.type}`);
        }
        const body = p.entry.resource as Resource | undefined;
        const bodyId = body?.id;
        const existingId = matches[0]?.id ?? (bodyId && ID_RE.test(bodyId) ? bodyId : undefined);
        target = `${p.type}/${existingId ?? newResourceId()}`;
        if (!existingId) {
          // Nothing matched and no id was given: a new resource, written with the plain creates (one
          // statement for all on PostgreSQL, no lookup of a previous version), recorded as the PUT it was.
          assignedIds.set(p.index, target.split('/')[1]);
        }
        p.segments = [p.type, target.split('/')[1]];
        p.rawQuery = '';
        // A conditional update's body need not carry an id (http.html#cond-update): it is the one found or assigned.
        if (body && !bodyId) {
          p.entry = { ...p.entry, resource: { ...body, id: p.segments[1] } };
        }
      }
    } catch (err) {
      throw entryError(p.index, err);
    }
    if (target && p.method !== 'GET') {
      if (targets.has(target)) {
        throw entryError(p.index, badRequest(`${target} is the subject of more than one entry in the transaction`));
      }
      targets.add(target);
    }
    if (fullUrl && target) {
      references.set(fullUrl, target);
    }
  }

  // 2. Resolve conditional references (Patient?identifier=...) to exactly one existing resource.
  for (const ref of conditional) {
    const [type, query] = ref.split('?', 2);
    const matches = await findByCriteria(tx, type, { ...req, prefer: undefined }, query);
    if (matches.length !== 1) {
      throw preconditionFailed(`Conditional reference "${ref}" matches ${matches.length} resources; it must match exactly one`);
    }
    references.set(ref, `${type}/${matches[0].id}`);
  }

  // 3. Execute in the order the specification prescribes; plain creates go to the store as one batch.
  const responses = new Array<BundleEntry>(parsed.length);
  const ordered = [...parsed].sort((a, b) => (METHOD_ORDER[a.method] ?? 9) - (METHOD_ORDER[b.method] ?? 9) || a.index - b.index);
  const plainCreates = ordered.filter((p) => assignedIds.has(p.index));
  const plainSet = new Set(plainCreates);
  for (const p of ordered) {
    if (p === plainCreates[0]) {
      await createBatch(tx, plainCreates, assignedIds, references, req, responses);
    }
    if (plainSet.has(p)) {
      continue;
    }
    const resentId = resent.get(p.index);
    if (resentId) {
      try {
        const { resource } = await tx.update({ ...(rewriteReferences(p.entry.resource, references) as Resource), id: resentId });
        responses[p.index] = entryResponse(resourceResponse(req, 200, resource, true), req.baseUrl, p);
      } catch (err) {
        throw entryError(p.index, err);
      }
      continue;
    }
    const existing = existingMatches.get(p.index);
    if (existing) {
      // An If-None-Exist that matched: report the existing resource, write nothing.
      responses[p.index] = { response: { status: '200 OK', location: resourceUrl(req.baseUrl, existing) } };
      continue;
    }
    const body = p.entry.resource ? rewriteReferences(p.entry.resource, references) : undefined;
    try {
      responses[p.index] = entryResponse(await dispatch(tx, subRequest(req, p, body)), req.baseUrl, p);
    } catch (err) {
      throw entryError(p.index, err);
    }
  }
  // Where the scopes limit what may be written, every write is checked before the transaction commits.
  const written = parsed.flatMap((p) => {
    const location = responses[p.index]?.response?.location;
    const id = idInLocation(location, p.type);
    const wrote = (p.method === 'POST' || p.method === 'PUT' || p.method === 'PATCH') && !existingMatches.has(p.index);
    return wrote && id && writesNeedCheck(req, p.type) ? [{ index: p.index, type: p.type, id, interaction: responses[p.index].response?.status.startsWith('201') ? ('c' as const) : ('u' as const) }] : [];
  });
  for (const w of written) {
    try {
      await requireWritable(tx, req, [w]);
    } catch (err) {
      throw entryError(w.index, err);
    }
  }
  return { resourceType: 'Bundle', type: 'transaction-response', entry: responses };
}

/**
 * The search criteria a transaction entry's write finds its target by (If-None-Exist, a conditional
 * update or delete), if any. Writes are authorised before anything runs: plain creates are written
 * together (createBatch) and conditional updates are rewritten to plain ones before they are dispatched,
 * so the checks dispatch makes would miss them. Reads are checked when dispatched.
 */
function writeCriteria(p: ParsedEntry): string | undefined {
  if (p.method === 'POST') return p.entry.request?.ifNoneExist || undefined;
  return WRITE_METHODS.has(p.method) && p.segments.length === 1 && p.rawQuery ? p.rawQuery : undefined;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

async function createBatch(
  tx: Repository,
  creates: ParsedEntry[],
  assignedIds: Map<number, string>,
  references: Map<string, string>,
  req: FhirRequest,
  responses: BundleEntry[],
): Promise<void> {
  const resources = creates.map((p) => {
    const body = p.entry.resource;
    if (!body || body.resourceType !== p.type) {
      throw entryError(p.index, badRequest(`Entry resource must be a ${p.type}`));
    }
    try {
      return validateFhirResource({ ...(rewriteReferences(body, references) as Resource), id: assignedIds.get(p.index) }, p.type);
    } catch (err) {
      throw entryError(p.index, err);
    }
  });
  const written = await tx.writeMany(
    resources.map((resource, i) => ({ resource, method: creates[i].method === 'PUT' ? 'PUT' : 'POST' })),
    { fresh: true, validated: true },
  );
  const minimal = (req.prefer ?? '').includes('return=minimal');
  written.forEach(({ resource }, i) => {
    // What the write path has to say about this resource (an identifier the patient index cannot use).
    const warnings = tx.takeWarnings(`${resource.resourceType}/${resource.id}`);
    responses[creates[i].index] = {
      resource: minimal ? undefined : resource,
      response: {
        status: '201 Created',
        location: resourceUrl(req.baseUrl, resource),
        etag: `W/"${resource.meta?.versionId}"`,
        lastModified: resource.meta?.lastUpdated,
        ...(warnings.length ? { outcome: { resourceType: 'OperationOutcome', issue: warnings.map((diagnostics) => ({ severity: 'warning', code: 'informational', diagnostics })) } } : {}),
      },
    };
  });
}
