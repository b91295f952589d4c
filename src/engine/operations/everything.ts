import { badRequest } from '../../fhir/outcome.js';
import { isKnownResourceType } from '../../fhir/resource-types.js';
import { parseDateRange } from '../../search/date-range.js';
import { joinOwnIndexRows, ownerKey } from '../../store/index-writer.js';
import type { Repository } from '../../store/repository.js';
import { linkedSourceIds } from '../../mpi/golden-record.js';
import { isGolden } from '../../mpi/source-identity.js';
import { derivedRecordsCondition } from '../../search/derived-records.js';
import type { Sql } from '../../search/filter-sql.js';
import type { Patient } from '@medplum/fhirtypes';
import { policyOf, type FhirRequest, type FhirResponse } from '../fhir-request.js';

const DEFAULT_PAGE = 1000;
const MAX_PAGE = 5000;

/**
 * Patient/{id}/$everything: the patient, every resource in their compartment (through the compartment
 * table, one indexed lookup), and the resources those reference directly (practitioners, organisations,
 * medications, locations). Supports _since, _type, _count and _offset paging in a stable order.
 *
 * On an enterprise (golden) record of the master patient index it covers every source record the golden
 * record links: the person's data from every participant. On a source record it leaves out the golden
 * record that links it (that record is the index's, not part of what the source holds about the patient).
 */
export async function everything(repo: Repository, patientId: string, req: FhirRequest): Promise<FhirResponse> {
  const focal = (await repo.read('Patient', patientId)) as Patient;
  const patientIds = isGolden(focal) ? [patientId, ...linkedSourceIds(focal)] : [patientId];
  const types = req.query.get('_type')?.split(',').filter(Boolean);
  for (const t of types ?? []) {
    if (!isKnownResourceType(t)) {
      throw badRequest(`Unknown resource type "${t}" in _type`);
    }
  }
  let since: number | undefined;
  if (req.query.get('_since')) {
    since = parseDateRange(req.query.get('_since') as string)?.lo;
    if (since === undefined) {
      throw badRequest('_since must be a FHIR instant');
    }
  }
  const count = Math.min(Number(req.query.get('_count') ?? DEFAULT_PAGE) || DEFAULT_PAGE, MAX_PAGE);
  const offset = Number(req.query.get('_offset') ?? 0) || 0;

  const inFocus = patientIds.map(() => '?').join(', ');
  // Golden records that link a patient in focus are in their compartment, but are not theirs to return.
  const keptFrom = (alias: string, rk: string): Sql => {
    const condition = derivedRecordsCondition(repo.db.dialect, 'Patient', rk, []);
    return condition
      ? { sql: `AND (${alias}.type <> 'Patient' OR ${alias}.id IN (${inFocus}) OR ${condition.sql})`, params: [...patientIds, ...condition.params] }
      : { sql: '', params: [] };
  };
  const kept = keptFrom('r', 'r.rk');
  // Stored JSON goes into the response as it is: no parse and re-serialise of thousands of resources.
  const rows = await repo.sql.query<{ type: string; id: string; content: string; last_updated: number }>(
    `SELECT r.type, r.id, r.content, r.last_updated FROM compartment c JOIN resource r ON r.rk = ${ownerKey('c')}
     WHERE c.patient_id IN (${inFocus}) AND r.deleted = 0 ${kept.sql}
     ORDER BY r.type, r.id`,
    [...patientIds, ...kept.params],
  );
  const seen = new Set<string>();
  const all: { type: string; id: string; json: string; lastUpdated: number }[] = [];
  for (const r of rows) {
    // A resource in the compartments of two linked source records comes back once.
    if (!seen.has(`${r.type}/${r.id}`)) {
      seen.add(`${r.type}/${r.id}`);
      all.push({ type: r.type, id: r.id, json: r.content, lastUpdated: r.last_updated });
    }
  }
  // One hop out: resources referenced from the compartment but not in it. A deleted resource has no index
  // or compartment rows left, so the compartment rows alone reach the live resources' references.
  const referencing = keptFrom('c', ownerKey('c'));
  const referenced = await repo.sql.query<{ target_type: string; target_id: string }>(
    `SELECT DISTINCT s.target_type, s.target_id FROM compartment c ${joinOwnIndexRows(repo.db.dialect, 'sp_reference', 's', ownerKey('c'))}
     WHERE c.patient_id IN (${inFocus}) AND s.target_id IS NOT NULL AND s.target_type IS NOT NULL ${referencing.sql}`,
    [...patientIds, ...referencing.params],
  );
  const byType = new Map<string, string[]>();
  for (const { target_type: t, target_id: id } of referenced) {
    if (!seen.has(`${t}/${id}`)) {
      seen.add(`${t}/${id}`);
      byType.set(t, [...(byType.get(t) ?? []), id]);
    }
  }
  for (const [t, ids] of byType) {
    for (const resource of await repo.readMany(t, ids)) {
      all.push({ type: t, id: resource.id as string, json: JSON.stringify(resource), lastUpdated: Date.parse(resource.meta?.lastUpdated ?? '') });
    }
  }
  // Only what the caller may read, before paging and the total: a withheld record is not counted either.
  const reachable = await policyOf(req).reachable(repo, all, 'r');
  const filtered = all.filter((r) => reachable.has(`${r.type}/${r.id}`) && (!types || types.includes(r.type)) && (since === undefined || r.lastUpdated >= since));
  const page = filtered.slice(offset, offset + count);
  const url = (o: number): string => {
    const q = new URLSearchParams(req.query);
    q.set('_count', String(count));
    q.set('_offset', String(o));
    return `${req.baseUrl}/Patient/${patientId}/$everything?${q.toString()}`;
  };
  const link = [{ relation: 'self', url: url(offset) }];
  if (offset + count < filtered.length) {
    link.push({ relation: 'next', url: url(offset + count) });
  }
  const entries = page.map((r) => `{"fullUrl":${JSON.stringify(`${req.baseUrl}/${r.type}/${r.id}`)},"resource":${r.json},"search":{"mode":"match"}}`);
  const head = JSON.stringify({ resourceType: 'Bundle', type: 'searchset', total: filtered.length, link });
  return { status: 200, rawBody: `${head.slice(0, -1)},"entry":[${entries.join(',')}]}` };
}
