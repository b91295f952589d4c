import { badRequest, fhirError, notFound } from '../fhir/outcome.js';
import { isKnownResourceType } from '../fhir/resource-types.js';
import type { Repository } from '../store/repository.js';
import { processBundle } from './bundle-processor.js';
import { conditionalDelete, conditionalUpdate, create, patch, read, remove, update } from './crud.js';
import { everything } from './operations/everything.js';
import { authorize, authorizeWrite, type FhirRequest, type FhirResponse } from './fhir-request.js';
import { isMpiOperation, mpiOperation } from './operations/mpi.js';
import { historyInteraction } from './history-interaction.js';
import { resourceResponse } from './responses.js';
import { searchInteraction } from './search-interaction.js';
import { auditEventInteraction } from '../audit/audit-interaction.js';
import { disclosures, DISCLOSURES_OPERATION } from '../audit/disclosures.js';

function methodNotAllowed(req: FhirRequest): never {
  throw fhirError(405, 'not-supported', `${req.method} is not supported on /${req.segments.join('/')}`);
}

/** Routes one FHIR interaction (from HTTP or from a Bundle entry) after checking the caller's scopes. */
export async function dispatch(repo: Repository, req: FhirRequest): Promise<FhirResponse> {
  const [type, second, third, fourth] = req.segments;
  const n = req.segments.length;
  if (n === 0) {
    if (req.method === 'POST') {
      // Each entry is authorised on its own as it is dispatched.
      return { status: 200, body: await processBundle(repo, req, dispatch) };
    }
    methodNotAllowed(req);
  }
  if (type === '_history' && n === 1 && req.method === 'GET') {
    authorize(req, '*', 's');
    return { status: 200, body: await historyInteraction(repo, req) };
  }
  if (!isKnownResourceType(type)) {
    throw notFound(`Unknown resource type "${type}"`);
  }
  // The audit log answers for AuditEvent (it is not in the resource tables) and for the accounting of disclosures.
  if (type === 'AuditEvent') return auditEventInteraction(repo, req);
  if (n === 3 && type === 'Patient' && third === DISCLOSURES_OPERATION && req.method === 'GET') return disclosures(repo, second, req);
  if (n === 1) {
    switch (req.method) {
      case 'GET':
        authorize(req, type, 's');
        return { status: 200, body: await searchInteraction(repo, type, req, req.query) };
      case 'POST':
        authorizeWrite(req, type, 'POST', Boolean(req.ifNoneExist));
        return create(repo, type, req);
      case 'PUT':
        authorizeWrite(req, type, 'PUT', true);
        if (!req.rawQuery) {
          throw badRequest('PUT on a type needs search criteria (conditional update) or an id in the URL');
        }
        return conditionalUpdate(repo, type, req);
      case 'DELETE':
        authorizeWrite(req, type, 'DELETE', true);
        if (!req.rawQuery) {
          throw badRequest('DELETE on a type needs search criteria (conditional delete)');
        }
        return conditionalDelete(repo, type, req);
    }
    methodNotAllowed(req);
  }
  if (n === 2 && second === '_search' && req.method === 'POST') {
    authorize(req, type, 's');
    const form = typeof req.body === 'string' ? new URLSearchParams(req.body) : new URLSearchParams();
    const query = new URLSearchParams([...req.query, ...form]);
    return { status: 200, body: await searchInteraction(repo, type, req, query) };
  }
  if (n === 2 && second === '_history' && req.method === 'GET') {
    authorize(req, type, 's');
    return { status: 200, body: await historyInteraction(repo, req, type) };
  }
  if (n === 2 && type === 'Patient' && isMpiOperation(second)) {
    return mpiOperation(repo, second, req);
  }
  if (n === 2) {
    switch (req.method) {
      case 'GET':
        authorize(req, type, 'r');
        return read(repo, type, second, req);
      case 'PUT':
        authorizeWrite(req, type, 'PUT', false);
        return update(repo, type, second, req);
      case 'PATCH':
        authorizeWrite(req, type, 'PATCH', false);
        return patch(repo, type, second, req);
      case 'DELETE':
        authorizeWrite(req, type, 'DELETE', false);
        return remove(repo, type, second, req);
    }
    methodNotAllowed(req);
  }
  if (n === 3 && third === '_history' && req.method === 'GET') {
    authorize(req, type, 'r');
    return { status: 200, body: await historyInteraction(repo, req, type, second) };
  }
  if (n === 4 && third === '_history' && req.method === 'GET') {
    authorize(req, type, 'r');
    const version = await repo.vread(type, second, fourth);
    return resourceResponse({ ...req, prefer: undefined }, 200, version, false);
  }
  if (n === 3 && type === 'Patient' && third === '$everything' && req.method === 'GET') {
    authorize(req, 'Patient', 'r');
    authorize(req, '*', 's');
    return everything(repo, second, req);
  }
  throw notFound(`No FHIR interaction at /${req.segments.join('/')}`);
}
