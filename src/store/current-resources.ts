import type { Resource } from '@medplum/fhirtypes';
import type { SqlExecutor } from './database.js';

/**
 * Up to `limit` current (not deleted) resources stored after resource key `afterRk`, in key order, of
 * `types` (every type without): a page of a scan that resumes from the last key it saw.
 */
export async function currentResourcesAfter(sql: SqlExecutor, afterRk: number, limit: number, types?: readonly string[]): Promise<{ rk: number; resource: Resource }[]> {
  const typeFilter = types ? ` AND type IN (${types.map(() => '?').join(', ')})` : '';
  const rows = await sql.query<{ rk: number | string; content: string }>(`SELECT rk, content FROM resource WHERE deleted = 0 AND rk > ?${typeFilter} ORDER BY rk LIMIT ${limit}`, [afterRk, ...(types ?? [])]);
  return rows.map((r) => ({ rk: Number(r.rk), resource: JSON.parse(r.content) as Resource }));
}

/** Every current resource (of `types`), read a page at a time in key order. */
export async function* currentResources(sql: SqlExecutor, types?: readonly string[], pageSize = 500): AsyncGenerator<Resource> {
  for (let after = -1; ; ) {
    const page = await currentResourcesAfter(sql, after, pageSize, types);
    if (!page.length) return;
    after = page[page.length - 1].rk;
    for (const { resource } of page) yield resource;
  }
}
