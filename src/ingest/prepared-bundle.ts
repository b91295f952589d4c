import type { Bundle, Resource } from '@medplum/fhirtypes';
import { validateFhirResource } from '../fhir/validation.js';
import { labelled } from '../labels/labeler.js';
import { isKnownResourceType } from '../fhir/resource-types.js';
import { extractIndexRows, type IndexRows } from '../search/index-values.js';
import { collectConditionalReferences, rewriteReferences } from '../engine/bundle-references.js';
import { newResourceId } from '../store/resource-id.js';
import { needsSendersCodeMap } from '../codes/code-map-store.js';

/** A new resource ready to store: its final JSON (id, references and meta set) and its index rows. */
export interface PreparedResource {
  type: string;
  id: string;
  content: string;
  rows: IndexRows;
}

/** Every resource of a create-only transaction Bundle, prepared; all are version 1 at `lastUpdated`. */
export interface PreparedBundle {
  lastUpdated: number;
  resources: PreparedResource[];
}

/**
 * Does, without the database, everything the transaction path does for a Bundle of plain creates (what
 * Synthea and most bulk exports send): new ids, urn:uuid references rewritten, validation, meta, JSON and
 * index rows. It is a pure function, so bulk loads run it on worker threads while the main thread writes.
 *
 * Anything else returns undefined and goes through the ordinary transaction path, which reports errors
 * precisely: other methods, If-None-Exist, conditional references (they need database lookups), a
 * request.url that does not name the entry's type, any resource that fails validation, and any resource
 * that came in a participant's message with local codes (its sender's code map is in the database, and
 * the ordinary path's prepare hook applies it, as on every write path: decision 0024).
 */
export function prepareCreateOnlyTransaction(bundle: Bundle): PreparedBundle | undefined {
  if (bundle?.resourceType !== 'Bundle' || bundle.type !== 'transaction' || !bundle.entry?.length) {
    return undefined;
  }
  const references = new Map<string, string>();
  const ids: string[] = [];
  for (const entry of bundle.entry) {
    const type = entry.resource?.resourceType;
    const plainCreate = entry.request?.method === 'POST' && entry.request.url === type && !entry.request.ifNoneExist;
    if (!type || !plainCreate || !isKnownResourceType(type) || needsSendersCodeMap(entry.resource as Resource)) {
      return undefined;
    }
    const id = newResourceId();
    ids.push(id);
    if (entry.fullUrl) {
      references.set(entry.fullUrl, `${type}/${id}`);
    }
  }
  const conditional = new Set<string>();
  bundle.entry.forEach((e) => collectConditionalReferences(e.resource, conditional));
  if (conditional.size) {
    return undefined;
  }
  const now = Date.now();
  const lastUpdated = new Date(now).toISOString();
  const resources: PreparedResource[] = [];
  for (const [i, entry] of bundle.entry.entries()) {
    const type = entry.resource?.resourceType as string;
    let valid: Resource;
    try {
      valid = validateFhirResource({ ...(rewriteReferences(entry.resource, references) as Resource), id: ids[i] }, type);
    } catch {
      return undefined;
    }
    const labels = labelled(valid); // as every write path does (src/store/repository.ts writeAll)
    const resource = { ...labels, meta: { ...labels.meta, versionId: '1', lastUpdated } } as Resource;
    resources.push({ type, id: ids[i], content: JSON.stringify(resource), rows: extractIndexRows(resource) });
  }
  return { lastUpdated: now, resources };
}
