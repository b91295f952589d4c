import type { Resource } from '@medplum/fhirtypes';

/**
 * Whether an update would store nothing new: the incoming resource equals the current version except for
 * the server-kept `meta.versionId` and `meta.lastUpdated`, and `meta.source`. Such an update keeps the
 * current version (no new version, history row, index rows or patient-index work), as HAPI FHIR's
 * "no-op update" does. It is common in an HIE: most result and encounter messages repeat a patient's
 * demographics unchanged, and without this each one wrote the Patient again. `meta.source` names the
 * message a version came from, which differs on every message by construction; the version keeps the
 * first one, and the later message's Provenance still points at the version it confirmed.
 */
export function isUnchangedUpdate(stored: Resource, incoming: Resource): boolean {
  return sameJson(withoutVersionMeta(stored), withoutVersionMeta(incoming));
}

function withoutVersionMeta(resource: Resource): Resource {
  if (!resource.meta) {
    return resource;
  }
  const { versionId: _v, lastUpdated: _l, source: _s, ...meta } = resource.meta;
  return { ...resource, meta: Object.keys(meta).length ? meta : undefined };
}

/** Deep equality of JSON values; object key order does not matter, array order does, undefined = absent. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return false;
  }
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => sameJson(item, other[i]));
  }
  const left = definedKeys(a as Record<string, unknown>);
  const right = definedKeys(b as Record<string, unknown>);
  return left.length === right.length && left.every((key) => sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

function definedKeys(obj: Record<string, unknown>): string[] {
  return Object.keys(obj).filter((key) => obj[key] !== undefined);
}
