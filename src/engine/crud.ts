import type { Resource } from '@medplum/fhirtypes';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { badRequest, fhirError, informational, notFound, preconditionFailed } from '../fhir/outcome.js';
import { search } from '../search/search-engine.js';
import { ID_RE, parseIfMatch, type Repository } from '../store/repository.js';
import { searchAccess, type FhirRequest, type FhirResponse } from './fhir-request.js';
import { resourceResponse } from './responses.js';
import { parseSearch } from './search-interaction.js';

function requireResourceBody(req: FhirRequest): Resource {
  if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) {
    throw badRequest('Request body must be a FHIR resource (JSON object)');
  }
  return req.body as Resource;
}

/** Resources matching a conditional query (If-None-Exist, conditional update/delete); at most `limit`. */
export async function findByCriteria(repo: Repository, type: string, req: FhirRequest, criteria: string, limit = 2): Promise<Resource[]> {
  const query = new URLSearchParams(criteria.startsWith('?') ? criteria.slice(1) : criteria);
  if (![...query.keys()].length) {
    throw badRequest('Conditional criteria must have at least one search parameter');
  }
  query.set('_count', String(limit));
  const { request } = parseSearch(type, { ...req, prefer: 'handling=strict' }, query);
  // Criteria see only what the caller may search: a conditional write must not tell whether a record it
  // may not reach exists.
  return (await search(repo, request, searchAccess(req))).matches;
}

/**
 * The lock a conditional write (If-None-Exist create, conditional update) holds from its search to its
 * commit, so that two writers with the same criteria cannot both find nothing and both create. One key
 * for both kinds: a conditional create and update of the same criteria race the same way.
 */
export function conditionalWriteLock(type: string, criteria: string): string {
  return `conditional:${type}?${criteria}`;
}

export async function create(repo: Repository, type: string, req: FhirRequest, assignedId?: string): Promise<FhirResponse> {
  const body = requireResourceBody(req);
  if (body.resourceType !== type) {
    throw badRequest(`resourceType "${body.resourceType}" does not match the URL's type "${type}"`, 'resourceType');
  }
  return repo.transaction(async (tx) => {
    if (req.ifNoneExist) {
      await tx.sql.lock(conditionalWriteLock(type, req.ifNoneExist));
      const existing = await findByCriteria(tx, type, req, req.ifNoneExist);
      if (existing.length > 1) {
        throw preconditionFailed(`If-None-Exist criteria "${req.ifNoneExist}" match more than one ${type}`);
      }
      if (existing.length === 1) {
        return resourceResponse(req, 200, existing[0], true);
      }
    }
    const resent = assignedId ? undefined : await tx.existingFor(body);
    if (resent) {
      // The source sent a record it already has here (same MRN): that record is updated, not duplicated.
      const { resource } = await tx.update({ ...body, id: resent });
      return resourceResponse(req, 200, resource, true, tx.takeWarnings());
    }
    const created = await tx.create(body, { id: assignedId });
    return resourceResponse(req, 201, created, true, tx.takeWarnings());
  });
}

/** A read; `known`: the resource already read (with the access policy's condition), else it is read here. */
export async function read(repo: Repository, type: string, id: string, req: FhirRequest, known?: Resource): Promise<FhirResponse> {
  const resource = known ?? (await repo.read(type, id));
  const response = resourceResponse({ ...req, prefer: undefined }, 200, resource, false);
  if (req.ifNoneMatch && req.ifNoneMatch === response.etag) {
    return { status: 304, etag: response.etag, lastModified: response.lastModified };
  }
  if (req.ifModifiedSince && Date.parse(req.ifModifiedSince) >= Math.floor(Date.parse(resource.meta?.lastUpdated ?? '') / 1000) * 1000) {
    return { status: 304, etag: response.etag, lastModified: response.lastModified };
  }
  return response;
}

export async function update(repo: Repository, type: string, id: string, req: FhirRequest): Promise<FhirResponse> {
  const body = requireResourceBody(req);
  if (body.resourceType !== type) {
    throw badRequest(`resourceType "${body.resourceType}" does not match the URL's type "${type}"`, 'resourceType');
  }
  if (!ID_RE.test(id)) {
    throw badRequest(`"${id}" is not a valid FHIR id`);
  }
  if (body.id !== id) {
    throw badRequest(`Resource id "${body.id ?? ''}" must match the id in the URL "${id}"`, 'id');
  }
  // In the write's own transaction, where the warnings it gives are kept (no savepoint when already in one).
  const write = async (tx: Repository): Promise<FhirResponse> => {
    const { resource, created } = await tx.update(body, { ifMatch: parseIfMatch(req.ifMatch) });
    return resourceResponse(req, created ? 201 : 200, resource, created, tx.takeWarnings());
  };
  return repo.inTransaction ? write(repo) : repo.transaction(write);
}

export async function conditionalUpdate(repo: Repository, type: string, req: FhirRequest): Promise<FhirResponse> {
  const body = requireResourceBody(req);
  return repo.transaction(async (tx) => {
    await tx.sql.lock(conditionalWriteLock(type, req.rawQuery));
    const matches = await findByCriteria(tx, type, req, req.rawQuery);
    if (matches.length > 1) {
      throw preconditionFailed(`Conditional update criteria match more than one ${type}`);
    }
    if (matches.length === 0) {
      if (body.id && (await tx.exists(type, body.id))) {
        throw badRequest(`No ${type} matches the criteria, but id ${body.id} belongs to another resource`);
      }
      return body.id ? update(tx, type, body.id, req) : create(tx, type, req);
    }
    const id = matches[0].id as string;
    if (body.id && body.id !== id) {
      throw badRequest(`Resource id "${body.id}" differs from the matching resource ${type}/${id}`, 'id');
    }
    return update(tx, type, id, { ...req, body: { ...body, id } });
  });
}

export async function patch(repo: Repository, type: string, id: string, req: FhirRequest): Promise<FhirResponse> {
  if (!Array.isArray(req.body)) {
    throw fhirError(415, 'not-supported', 'PATCH takes a JSON Patch document (application/json-patch+json): an array of operations');
  }
  return repo.transaction(async (tx) => {
    const current = await tx.read(type, id);
    const expected = parseIfMatch(req.ifMatch) ?? Number(current.meta?.versionId);
    let patched: Resource;
    try {
      patched = jsonpatch.applyPatch(structuredClone(current), req.body as Operation[], true, false).newDocument;
    } catch (err) {
      // A failed "test" operation is a precondition failure; anything else is a bad patch.
      const { name, message } = err as Error;
      throw name === 'TEST_OPERATION_FAILED' ? preconditionFailed(`JSON Patch test failed: ${message.split('\n')[0]}`) : badRequest(`Invalid JSON Patch: ${message.split('\n')[0]}`);
    }
    if (patched.resourceType !== type || patched.id !== id) {
      throw badRequest('JSON Patch must not change resourceType or id');
    }
    const { resource } = await tx.update(patched, { ifMatch: expected });
    return resourceResponse(req, 200, resource, false);
  });
}

export async function remove(repo: Repository, type: string, id: string, req: FhirRequest): Promise<FhirResponse> {
  const { versionId } = await repo.delete(type, id, { ifMatch: parseIfMatch(req.ifMatch) });
  return { status: 200, body: informational(`${type}/${id} deleted`), etag: versionId ? `W/"${versionId}"` : undefined };
}

export async function conditionalDelete(repo: Repository, type: string, req: FhirRequest): Promise<FhirResponse> {
  return repo.transaction(async (tx) => {
    const matches = await findByCriteria(tx, type, req, req.rawQuery);
    if (matches.length > 1) {
      throw preconditionFailed(`Conditional delete criteria match more than one ${type}`);
    }
    if (!matches.length) {
      throw notFound(`No ${type} matches the conditional delete criteria`);
    }
    return remove(tx, type, matches[0].id as string, req);
  });
}
