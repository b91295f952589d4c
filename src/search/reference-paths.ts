import { expressionFor, getCompiledParam, topLevelUnion } from './parameters.js';

/**
 * The element paths of a reference search parameter, when its expression is only plain paths
 * (`Observation.subject`, `Encounter.participant.individual`), each perhaps narrowed by
 * `.where(resolve() is X)`: the reference strings can then be read straight from the resource's JSON.
 * Undefined when any part needs the FHIRPath engine (choice types, functions, casts).
 *
 * Why: the audit names the patients of every resource an answer holds (audit-subjects.ts), 20 to 1,000
 * per search; through the engine that is a typed-value walk per parameter (about 2 µs per Observation),
 * through the JSON a few property reads. A narrowing `where(resolve() is X)` is dropped: callers keep the
 * references of the type they want by the reference text, as the narrowing would.
 */
export function plainReferencePaths(resourceType: string, code: string): readonly (readonly string[])[] | undefined {
  let byCode = pathsByType.get(resourceType);
  if (!byCode) pathsByType.set(resourceType, (byCode = new Map()));
  if (!byCode.has(code)) byCode.set(code, derive(resourceType, code));
  return byCode.get(code);
}

const pathsByType = new Map<string, Map<string, readonly (readonly string[])[] | undefined>>();
const PLAIN_PATH = /^([A-Za-z]+)((?:\.[a-z][A-Za-z]*)+)(?:\.where\(resolve\(\)is[A-Z][A-Za-z]*\))?$/;

function derive(resourceType: string, code: string): readonly (readonly string[])[] | undefined {
  const param = getCompiledParam(resourceType, code);
  if (!param?.definition.expression || param.type !== 'reference') return undefined;
  const paths: string[][] = [];
  for (const part of topLevelUnion(expressionFor(resourceType, param.definition.expression))) {
    const flat = part.replace(/\s+/g, '');
    const m = PLAIN_PATH.exec(flat.startsWith('(') && flat.endsWith(')') ? flat.slice(1, -1) : flat);
    if (!m || m[1] !== resourceType) return undefined;
    paths.push(m[2].slice(1).split('.'));
  }
  return paths.length ? paths : undefined;
}

/** Adds the `reference` strings at a plain path of a value to `out` (arrays flattened at every step, as FHIRPath does). */
export function referencesAt(value: unknown, path: readonly string[], out: string[], step = 0): string[] {
  if (Array.isArray(value)) {
    for (const item of value) referencesAt(item, path, out, step);
  } else if (value && typeof value === 'object') {
    if (step === path.length) {
      const reference = (value as { reference?: unknown }).reference;
      if (typeof reference === 'string') out.push(reference);
    } else {
      referencesAt((value as Record<string, unknown>)[path[step]], path, out, step + 1);
    }
  }
  return out;
}
