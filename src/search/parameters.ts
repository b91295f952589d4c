import { getSearchParameters, parseFhirPath, type FhirPathAtom } from '@medplum/core';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';
import { definitionFile, loadFhirDefinitions } from '../fhir/definitions.js';
import { isPatientCompartmentParam } from './compartment.js';
import { compileSearchPath, type PathEvaluator } from './path-compiler.js';

export type ParamType = 'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'composite' | 'special';

/** One component of a composite parameter: its type and its FHIRPath relative to the base element. */
export interface CompositeComponent {
  type: ParamType;
  atom: FhirPathAtom;
  /** The same expression compiled to property navigation where possible (see path-compiler.ts). */
  evaluate: PathEvaluator;
}

/** A search parameter compiled for one resource type: its FHIRPath narrowed to that type and parsed once. */
export interface CompiledParam {
  code: string;
  type: ParamType;
  definition: SearchParameter;
  atom: FhirPathAtom;
  /** The same expression compiled to property navigation where possible (see path-compiler.ts). */
  evaluate: PathEvaluator;
  targets: string[];
  components?: CompositeComponent[];
  /**
   * Set when the parameter's rows would repeat other parameters' rows, which then answer for it (see
   * derivedParameters): its own rows are not written. `codes` are the stored parameters; `targetType`
   * narrows a reference parameter (`patient` is `subject` rows whose target is a Patient).
   */
  storedAs?: StoredAs;
}

export interface StoredAs {
  codes: string[];
  targetType?: string;
}

/** Parameters answered from the resource table's own columns, not from index rows. */
export const COLUMN_PARAMS = new Set(['_id', '_lastUpdated']);
/** Medplum-specific extensions of the R4 list that Tessera does not implement. */
const EXCLUDED = new Set(['_compartment']);

const cache = new Map<string, Map<string, CompiledParam>>();
/** All search parameters of a resource type, from the official R4 SearchParameter definitions. */
export function getCompiledParams(resourceType: string): Map<string, CompiledParam> {
  let params = cache.get(resourceType);
  if (params) {
    return params;
  }
  loadFhirDefinitions();
  params = new Map();
  // Medplum lists no search parameter for Binary; the Resource-level ones (_id, _lastUpdated, _security,
  // _tag, ...) belong to every type, and the access policy reads a Binary's labels through _security.
  const own = getSearchParameters(resourceType) ?? {};
  const definitions = Object.keys(own).length ? own : (getSearchParameters('Resource') ?? {});
  for (const sp of Object.values(definitions)) {
    const code = sp.code as string;
    if (EXCLUDED.has(code) || !sp.expression) {
      continue;
    }
    const components = sp.type === 'composite' ? compositeComponents(sp) : undefined;
    if (sp.type === 'composite' && !components) {
      continue; // Not a two-component, token-first composite: left out rather than half-supported.
    }
    const atom = parseFhirPath(expressionFor(resourceType, sp.expression));
    const compiled: CompiledParam = {
      code,
      type: sp.type as ParamType,
      definition: sp,
      atom,
      evaluate: compileSearchPath(atom),
      targets: (sp.target ?? []) as string[],
      components,
    };
    params.set(code, compiled);
  }
  deriveStoredParams(resourceType, params);
  cache.set(resourceType, params);
  return params;
}

/** An expression's union parts, each without spaces and one pair of enclosing parentheses. */
function unionParts(expression: string): string[] {
  return topLevelUnion(expression).map((part) => {
    const flat = part.replace(/\s+/g, '');
    return flat.startsWith('(') && flat.endsWith(')') && topLevelUnion(flat.slice(1, -1)).length === 1 ? flat.slice(1, -1) : flat;
  });
}

/** What must match for two parameters to yield the same rows from the same values: type and components. */
function rowShape(param: CompiledParam): string {
  return `${param.type}:${(param.components ?? []).map((c) => `${c.type}=${String(c.atom)}`).join(',')}`;
}

const WHERE_RESOLVE_IS = /^(.+)\.where\(resolve\(\)is([A-Z][A-Za-z]+)\)$/;

/**
 * Finds the parameters whose rows other parameters already hold, so that a write stores each fact once.
 * R4 defines, for Observation alone, `combo-code` as `code | component-code`, `combo-value-quantity`,
 * `combo-code-value-quantity` likewise, and `patient` as `subject.where(resolve() is Patient)`: about a
 * third of an Observation's index rows were copies. Derived from the definitions' expressions, not listed
 * by hand: a parameter whose union parts are exactly the parts of other parameters of the same type and
 * shape is stored as those; `X.where(resolve() is T)` over a reference parameter `X` is stored as X with
 * target T. Patient-compartment parameters keep their own rows (the compartment is computed from them).
 */
function deriveStoredParams(resourceType: string, params: Map<string, CompiledParam>): void {
  const parts = new Map([...params.values()].map((p) => [p.code, unionParts(expressionFor(resourceType, p.definition.expression as string))]));
  const byShape = new Map<string, CompiledParam[]>();
  for (const p of params.values()) {
    byShape.set(rowShape(p), [...(byShape.get(rowShape(p)) ?? []), p]);
  }
  for (const p of params.values()) {
    const own = parts.get(p.code) as string[];
    if (isPatientCompartmentParam(resourceType, p.code) || p.type === 'special') {
      continue;
    }
    const narrowed = own.length === 1 && p.type === 'reference' ? WHERE_RESOLVE_IS.exec(own[0]) : null;
    if (narrowed) {
      const base = [...params.values()].find((q) => q.type === 'reference' && q !== p && parts.get(q.code)?.join('|') === narrowed[1]);
      if (base) {
        p.storedAs = { codes: [base.code], targetType: narrowed[2] };
      }
      continue;
    }
    if (own.length < 2) {
      continue;
    }
    const pieces = (byShape.get(rowShape(p)) ?? []).filter((q) => {
      const theirs = parts.get(q.code) as string[];
      return q !== p && theirs.length < own.length && theirs.every((part) => own.includes(part));
    });
    const covered = new Set(pieces.flatMap((q) => parts.get(q.code) as string[]));
    if (pieces.length && own.every((part) => covered.has(part))) {
      p.storedAs = { codes: pieces.map((q) => q.code) };
    }
  }
  // A parameter another one is stored as keeps its own rows, even if it could itself be derived.
  for (const p of params.values()) {
    for (const code of p.storedAs?.codes ?? []) {
      const base = params.get(code);
      if (base?.storedAs) {
        base.storedAs = undefined;
      }
    }
  }
}

/**
 * The parts of a shared parameter's expression that apply to one resource type: `Patient.name | Person.name`
 * is `Patient.name` for Patient. Medplum's narrowing drops a part that is the bare type, so that
 * `Observation | Observation.component` (combo-code-value-quantity) lost the Observation's own code and
 * value, and keeps `RelatedPerson.*` parts for Person (harmless, they match nothing).
 */
export function expressionFor(resourceType: string, expression: string): string {
  // A part rooted at Resource (the parameters every type has, such as _security) is the type's own.
  const parts = topLevelUnion(expression).map((part) => part.replace(/^(\(*)Resource\./, `$1${resourceType}.`));
  const own = parts.filter((part) => {
    const root = part.replace(/^\(+/, '').split(/[.\s]/)[0];
    return root === resourceType;
  });
  // A part rooted at no type (`name | alias` of InsurancePlan) is relative to the resource itself.
  const anyTyped = parts.some((part) => /^\(*[A-Z]/.test(part));
  return own.length ? own.join(' | ') : anyTyped ? '{}' : expression;
}

/** Splits `a | b | (c | d)` at its top-level union operators. */
function topLevelUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i];
    if (ch === "'") {
      quoted = !quoted;
    } else if (!quoted && ch === '(') {
      depth++;
    } else if (!quoted && ch === ')') {
      depth--;
    } else if (!quoted && depth === 0 && ch === '|') {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts;
}

let definitionsByUrl: Map<string, SearchParameter> | undefined;

/**
 * Composite parameters Tessera indexes: two components, the first a token (code-value-quantity,
 * component-code-value-concept, context-type-value, ...). Their components name other parameters by URL.
 */
function compositeComponents(sp: SearchParameter): CompositeComponent[] | undefined {
  if (!definitionsByUrl) {
    const bundle = definitionFile<Bundle<SearchParameter>>('search-parameters.json');
    definitionsByUrl = new Map((bundle.entry ?? []).map((e) => [e.resource?.url as string, e.resource as SearchParameter]));
  }
  const components = (sp.component ?? []).map((c) => {
    const definition = definitionsByUrl?.get(c.definition ?? '');
    if (!definition || !c.expression) {
      return undefined;
    }
    const atom = parseFhirPath(c.expression);
    return { type: definition.type as ParamType, atom, evaluate: compileSearchPath(atom) };
  });
  if (components.length !== 2 || components.some((c) => !c) || components[0]?.type !== 'token') {
    return undefined;
  }
  return components as CompositeComponent[];
}

export function getCompiledParam(resourceType: string, code: string): CompiledParam | undefined {
  return getCompiledParams(resourceType).get(code);
}
