import type { Bundle, Resource } from '@medplum/fhirtypes';
import { validateFhirResource } from '../fhir/validation.js';
import { labelled } from '../labels/labeler.js';
import { withReferencedLabelsInWrite } from '../labels/referenced-labels.js';
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
 * the ordinary path's prepare hook applies it, as on every write path: decision 0024), and any resource
 * that takes its meaning from a resource outside the Bundle (its labels are in the database:
 * labels/referenced-labels.ts), and any Subscription (its write-only channel values: the registry's
 * prepare hook).
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
    // A Subscription's signing secret and headers are taken out of it by its observer's prepare hook
    // before it is stored (notify/write-only-channel.ts): only the ordinary path runs that hook.
    if (!type || !plainCreate || !isKnownResourceType(type) || type === 'Subscription' || needsSendersCodeMap(entry.resource as Resource)) {
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
  const valid: Resource[] = [];
  for (const [i, entry] of bundle.entry.entries()) {
    try {
      valid.push(validateFhirResource({ ...(rewriteReferences(entry.resource, references) as Resource), id: ids[i] }, entry.resource?.resourceType as string));
    } catch {
      return undefined;
    }
  }
  const inWrite = new Map(valid.map((r) => [`${r.resourceType}/${r.id}`, r]));
  const resources: PreparedResource[] = [];
  for (const resource of valid) {
    // Labelled as every write path labels (src/store/repository.ts writeAll, with the ReferencedLabels
    // observer): a reference that gives it meaning from a stored resource needs the ordinary path.
    const withReferenced = withReferencedLabelsInWrite(resource, inWrite);
    if (!withReferenced) return undefined;
    const labels = labelled(withReferenced);
    const stored = { ...labels, meta: { ...labels.meta, versionId: '1', lastUpdated } } as Resource;
    resources.push({ type: stored.resourceType, id: stored.id as string, content: JSON.stringify(stored), rows: extractIndexRows(stored) });
  }
  return { lastUpdated: now, resources };
}
