import { badRequest, fhirError, notFound } from '../fhir/outcome.js';
import { isKnownResourceType } from '../fhir/resource-types.js';
import { ID_RE, type Repository } from '../store/repository.js';
import { processBundle } from './bundle-processor.js';
import { conditionalDelete, conditionalUpdate, create, patch, read, remove, update } from './crud.js';
import { everything } from './operations/everything.js';
import { mergedSearch } from './operations/merged-search.js';
import { patientSummary } from './operations/summary.js';
import { timeline } from './operations/timeline.js';

const RECORD_OPERATIONS = new Set(['$merged-record', '$summary', '$timeline']);
import { authorize, authorizeWrite, idInLocation, requireReachable, requireWritable, writesNeedCheck, type FhirRequest, type FhirResponse } from './fhir-request.js';
import { policyFor } from './request-policy.js';
import { breakTheGlassReview, declareBreakTheGlass } from './operations/break-the-glass.js';
import { isMpiOperation, mpiOperation } from './operations/mpi.js';
import { SUBSCRIPTION_OPERATIONS, subscriptionOperation, subscriptionStatuses, subscriptionTopics } from './operations/subscriptions.js';
import { historyInteraction } from './history-interaction.js';
import { versionReach } from './version-reach.js';
import { resourceResponse } from './responses.js';
import { searchInteraction } from './search-interaction.js';
import { auditEventInteraction } from '../audit/audit-interaction.js';
import { disclosures, DISCLOSURES_OPERATION } from '../audit/disclosures.js';

/**
 * A type search, over the source copies (the default, or `_view=sources`) or over one person's merged
 * record (`_view=merged`, operations/merged-search.ts).
 */
async function viewedSearch(repo: Repository, type: string, req: FhirRequest, query: URLSearchParams): Promise<FhirResponse> {
  const view = query.get('_view');
  if (view === 'merged') return mergedSearch(repo, type, req, query);
  if (view !== null && view !== 'sources') throw badRequest('_view must be "merged" or "sources"');
  const plain = new URLSearchParams([...query].filter(([k]) => k !== '_view'));
  return { status: 200, body: await searchInteraction(repo, type, req, plain) };
}

/**
 * Runs a single-resource write, and where the scopes limit what may be written (patient context,
 * granular scopes) checks the result inside the same transaction, so that a write out of reach rolls back.
 */
async function checkedWrite(repo: Repository, req: FhirRequest, type: string, run: (repo: Repository) => Promise<FhirResponse>): Promise<FhirResponse> {
  if (!writesNeedCheck(req, type)) {
    return run(repo);
  }
  return repo.transaction(async (tx) => {
    const res = await run(tx);
    const id = (res.body?.resourceType === type ? res.body.id : undefined) ?? idInLocation(res.location, type);
    if (id && (res.status === 200 || res.status === 201)) {
      await requireWritable(tx, req, [{ type, id, interaction: res.status === 201 ? 'c' : 'u' }]);
    }
    return res;
  });
}

function methodNotAllowed(req: FhirRequest): never {
  throw fhirError(405, 'not-supported', `${req.method} is not supported on /${req.segments.join('/')}`);
}

/** Routes one FHIR interaction (from HTTP or from a Bundle entry) after checking the caller's scopes. */
export async function dispatch(repo: Repository, req: FhirRequest): Promise<FhirResponse> {
  // The access policy is worked out once, here, where every interaction enters (HTTP, Bundle entries,
  // intake); every check below and in the interactions asks it.
  req.policy ??= await policyFor(repo, req.auth);
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
    req.policy.requireUnrestricted('*', 's', 'The history of the whole server', { privacy: true });
    return { status: 200, body: await historyInteraction(repo, req) };
  }
  // R4 has no SubscriptionTopic type; the topics are served beside it, as the Subscriptions Backport does.
  if (type === 'SubscriptionTopic' && n <= 2 && req.method === 'GET') return subscriptionTopics(req, second);
  if (!isKnownResourceType(type)) {
    throw notFound(`Unknown resource type "${type}"`);
  }
  // An id in the path is checked before it reaches a query: a malformed one (a NUL byte, which PostgreSQL
  // text cannot hold, among them) is the client's error, not a lookup that fails.
  if (n >= 2 && !second.startsWith('_') && !second.startsWith('$') && !ID_RE.test(second)) {
    throw badRequest(`"${second}" is not a valid FHIR id ([A-Za-z0-9-.]{1,64})`);
  }
  // The audit log answers for AuditEvent (it is not in the resource tables) and for the accounting of disclosures.
  if (type === 'AuditEvent') return auditEventInteraction(repo, req);
  if (n === 3 && type === 'Patient' && third === DISCLOSURES_OPERATION && req.method === 'GET') return disclosures(repo, second, req);
  if (n === 1) {
    switch (req.method) {
      case 'GET':
        authorize(req, type, 's');
        return viewedSearch(repo, type, req, req.query);
      case 'POST':
        authorizeWrite(req, type, 'POST', Boolean(req.ifNoneExist));
        return checkedWrite(repo, req, type, (r) => create(r, type, req));
      case 'PUT':
        authorizeWrite(req, type, 'PUT', true);
        if (!req.rawQuery) {
          throw badRequest('PUT on a type needs search criteria (conditional update) or an id in the URL');
        }
        return checkedWrite(repo, req, type, (r) => conditionalUpdate(r, type, req));
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
    return viewedSearch(repo, type, req, query);
  }
  if (n === 2 && second === '_history' && req.method === 'GET') {
    req.policy.requireUnrestricted(type, 's', `The history of every ${type}`, { privacy: true });
    return { status: 200, body: await historyInteraction(repo, req, type) };
  }
  if (n === 2 && type === 'Patient' && second === '$break-the-glass-review') {
    return breakTheGlassReview(repo, req);
  }
  if (n === 3 && type === 'Patient' && third === '$break-the-glass') {
    return declareBreakTheGlass(repo, second, req);
  }
  if (n === 2 && type === 'Patient' && isMpiOperation(second)) {
    return mpiOperation(repo, second, req);
  }
  if (n === 2 && type === 'Subscription' && second === '$status' && req.method === 'GET') {
    return subscriptionStatuses(repo, req);
  }
  if (n === 3 && type === 'Subscription' && SUBSCRIPTION_OPERATIONS.has(third) && (req.method === 'GET' || req.method === 'POST')) {
    return subscriptionOperation(repo, second, third, req);
  }
  if (n === 2) {
    switch (req.method) {
      case 'GET': {
        authorize(req, type, 'r');
        // A restricted caller's read is one query when the resource is there and within reach; a miss is
        // then told apart (out of reach: 404; never there: 404; deleted: 410 to those who reach its type).
        const rows = req.policy.rows(type, 'r', 'r');
        const [reachable] = rows ? await repo.readMany(type, [second], rows) : [];
        if (!reachable) await requireReachable(repo, req, type, second, 'r');
        return read(repo, type, second, req, reachable);
      }
      case 'PUT':
        authorizeWrite(req, type, 'PUT', false);
        await requireReachable(repo, req, type, second, 'u');
        return checkedWrite(repo, req, type, (r) => update(r, type, second, req));
      case 'PATCH':
        authorizeWrite(req, type, 'PATCH', false);
        await requireReachable(repo, req, type, second, 'u');
        return checkedWrite(repo, req, type, (r) => patch(r, type, second, req));
      case 'DELETE':
        authorizeWrite(req, type, 'DELETE', false);
        await requireReachable(repo, req, type, second, 'd');
        return remove(repo, type, second, req);
    }
    methodNotAllowed(req);
  }
  if (n === 3 && third === '_history' && req.method === 'GET') {
    authorize(req, type, 'r');
    await requireReachable(repo, req, type, second, 'r');
    return { status: 200, body: await historyInteraction(repo, req, type, second) };
  }
  if (n === 4 && third === '_history' && req.method === 'GET') {
    authorize(req, type, 'r');
    await requireReachable(repo, req, type, second, 'r');
    const version = await repo.vread(type, second, fourth);
    // A past version is judged by the facts the policy reads, which the index holds for the current one only.
    if (req.policy.rowFacts(type, 'r') && !versionReach(req.policy, await repo.read(type, second))(version)) throw notFound(`${type}/${second}/_history/${fourth} not found`);
    return resourceResponse({ ...req, prefer: undefined }, 200, version, false);
  }
  if (n === 3 && type === 'Patient' && third === '$everything' && req.method === 'GET') {
    // The patient must be readable; what the compartment holds is cut down type by type to what the
    // caller may read (operations/everything.ts).
    authorize(req, 'Patient', 'r');
    await requireReachable(repo, req, 'Patient', second, 'r');
    return everything(repo, second, req);
  }
  if (n === 3 && type === 'Patient' && RECORD_OPERATIONS.has(third) && req.method === 'GET') {
    // The merged record's operations read exactly what $everything reads (operations/patient-record.ts).
    authorize(req, 'Patient', 'r');
    await requireReachable(repo, req, 'Patient', second, 'r');
    if (third === '$merged-record') return everything(repo, second, req, third, 'merged');
    if (third === '$summary') return patientSummary(repo, second, req);
    return timeline(repo, second, req);
  }
  throw notFound(`No FHIR interaction at /${req.segments.join('/')}`);
}
