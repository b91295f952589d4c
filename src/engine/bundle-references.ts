/** Reference handling shared by the transaction processor and the bulk-load preparation. */

/** Replaces every `reference` equal to a key of `map` (urn:uuid fullUrls) with its resolved reference. */
export function rewriteReferences(value: unknown, map: Map<string, string>): unknown {
  if (Array.isArray(value)) {
    return value.map((v) => rewriteReferences(v, map));
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = k === 'reference' && typeof v === 'string' && map.has(v) ? map.get(v) : rewriteReferences(v, map);
    }
    return out;
  }
  return value;
}

export function collectConditionalReferences(value: unknown, into: Set<string>): void {
  if (Array.isArray(value)) {
    value.forEach((v) => collectConditionalReferences(v, into));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string' && /^[A-Z][A-Za-z]+\?/.test(v)) {
        into.add(v);
      } else {
        collectConditionalReferences(v, into);
      }
    }
  }
}

