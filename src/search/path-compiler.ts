import { getTypedPropertyValue, toTypedValue, type FhirPathAtom, type TypedValue } from '@medplum/core';
import { findElementAccess, readElement, type ElementAccess } from '../fhir/element-values.js';
import { isKnownResourceType } from '../fhir/resource-types.js';

/** Evaluates a search parameter's FHIRPath on a collection, as Medplum's engine would. */
export type PathEvaluator = (input: TypedValue[]) => TypedValue[];

/**
 * Compiles the FHIRPath of a search parameter into plain property navigation when it only uses the forms
 * the R4 SearchParameters mostly use: paths (`Observation.component.code`), unions (`|`), type filters
 * (`value as Quantity`, `value.as(Quantity)`), `where(resolve() is Patient)` and `where(system = 'phone')`. Anything else is
 * left to Medplum's FHIRPath engine. The compiled form returns the same items as the engine (test/
 * search-index.test.ts compares the index rows of both on the R4 examples and Synthea) except that a
 * union keeps duplicates, which the indexer removes anyway, and that the as() function filters by type
 * (Medplum's does not), and it costs a fraction: index extraction was
 * about 100 µs per resource with the engine alone (docs/performance.md).
 */
export function compileSearchPath(atom: FhirPathAtom): PathEvaluator {
  const compiled = compile(atom.child as AtomNode);
  return compiled ?? ((input) => atom.eval({ variables: {} }, input));
}

/** The parts of Medplum's atom classes this compiler reads (they are not all exported, so matched by shape). */
interface AtomNode {
  name?: string;
  args?: AtomNode[];
  operator?: string;
  left?: AtomNode;
  right?: AtomNode;
  value?: TypedValue;
}

/** Type names `is` treats specially (by value shape, not by type name): left to the engine. */
const SPECIAL_IS_TYPES = new Set(['Boolean', 'Decimal', 'Integer', 'Date', 'DateTime', 'Time', 'Period', 'Quantity']);

function isSymbol(a: AtomNode | undefined): a is AtomNode & { name: string } {
  return !!a && typeof a.name === 'string' && !a.args && !a.operator;
}

function compile(a: AtomNode): PathEvaluator | undefined {
  if (isSymbol(a)) {
    return a.name.startsWith('%') || a.name.startsWith('$') ? undefined : navigate(a.name);
  }
  if (a.operator && a.left && a.right) {
    return compileOperator(a.operator, a.left, a.right);
  }
  if (a.name === 'as' && a.args?.length === 1 && isSymbol(a.args[0])) {
    // Filters by type as FHIRPath says. Medplum's as() function returns its input unfiltered, which indexed
    // an Observation's valueQuantity under code-value-concept and code-value-string too, and every
    // Condition's onsetDateTime under onset-info (a string parameter).
    const isOfType = typeFilter(a.args[0].name);
    return (input) => input.filter(isOfType);
  }
  if (a.name === 'where' && a.args?.length === 1) {
    const keep = compileCriterion(a.args[0]);
    return keep && ((input) => input.filter(keep));
  }
  return undefined;
}

function compileOperator(operator: string, leftAtom: AtomNode, rightAtom: AtomNode): PathEvaluator | undefined {
  if (operator === '|') {
    return compileUnion(leftAtom, rightAtom);
  }
  const left = compile(leftAtom);
  if (!left) {
    return undefined;
  }
  if (operator === 'as' && isSymbol(rightAtom)) {
    const isOfType = typeFilter(rightAtom.name);
    return (input) => left(input).filter(isOfType);
  }
  const right = operator === '.' ? compile(rightAtom) : undefined;
  return right && ((input) => right(left(input)));
}

/**
 * A union, flattened: the common parameters are unions of one branch per resource type
 * (`AllergyIntolerance.patient | CarePlan.subject... | Observation.subject...`), and nested two at a time
 * each level copied every result so far into a new array.
 */
function compileUnion(leftAtom: AtomNode, rightAtom: AtomNode): PathEvaluator | undefined {
  const branches: PathEvaluator[] = [];
  for (const atom of unionBranches(leftAtom, rightAtom)) {
    const branch = compile(atom);
    if (!branch) {
      return undefined;
    }
    branches.push(branch);
  }
  return (input) => {
    const out: TypedValue[] = [];
    for (const branch of branches) {
      for (const value of branch(input)) out.push(value);
    }
    return out;
  };
}

function unionBranches(left: AtomNode, right: AtomNode): AtomNode[] {
  const side = (a: AtomNode): AtomNode[] => (a.operator === '|' && a.left && a.right ? unionBranches(a.left, a.right) : [a]);
  return [...side(left), ...side(right)];
}

/**
 * FHIRPath's own primitive type names, which the R4 search parameters use for FHIR primitives
 * (`value.as(DateTime)` for Observation.valueDateTime), mapped to the FHIR type names values carry.
 */
const FHIR_PRIMITIVE_OF_SYSTEM_TYPE: Record<string, string> = {
  Boolean: 'boolean',
  String: 'string',
  Integer: 'integer',
  Decimal: 'decimal',
  Date: 'date',
  DateTime: 'dateTime',
  Time: 'time',
};

/** `as Type` / `as(Type)`: keeps the values of that type. */
function typeFilter(typeName: string): (e: TypedValue) => boolean {
  const fhirName = FHIR_PRIMITIVE_OF_SYSTEM_TYPE[typeName] ?? typeName;
  return (e) => e.type === fhirName;
}

/** `resolve() is Type` and `element = 'literal'` inside where(). */
function compileCriterion(a: AtomNode): ((e: TypedValue) => boolean) | undefined {
  if (a.operator === 'is' && a.left?.name === 'resolve' && a.left.args?.length === 0 && isSymbol(a.right)) {
    const typeName = a.right.name;
    if (SPECIAL_IS_TYPES.has(typeName) || typeName.includes('.')) {
      return undefined;
    }
    return (e) => resolvedType(e) === typeName;
  }
  if (a.operator === '=' && isSymbol(a.left) && typeof a.right?.value?.value === 'string') {
    const read = compile(a.left);
    const literal = a.right.value.value;
    return read && ((e) => {
      const values = read([e]);
      return values.length === 1 && values[0].value?.valueOf() === literal;
    });
  }
  return undefined;
}

/** Property navigation: one element of each object in the collection, typed, arrays flattened. */
function navigate(name: string): PathEvaluator {
  const accessByType = new Map<string, ElementAccess | undefined>();
  // A resource type name (the first step of each branch of `AllergyIntolerance.patient | ... |
  // Observation.subject...`): it keeps the resources of that type and yields nothing from anything else,
  // which the property lookup below would also find, at a cost paid for every other branch.
  const typeStep = isKnownResourceType(name);
  return (input) => {
    const out: TypedValue[] = [];
    for (const e of input) {
      const value = e.value;
      if (!value || typeof value !== 'object') {
        continue;
      }
      if ((value as { resourceType?: string }).resourceType === name) {
        out.push(e);
        continue;
      }
      if (typeStep) {
        continue;
      }
      let access = accessByType.get(e.type);
      if (access === undefined && !accessByType.has(e.type)) {
        access = findElementAccess(e.type, name);
        accessByType.set(e.type, access);
      }
      const result = access ? readElement(value as Record<string, unknown>, access) : getTypedPropertyValue(e, name);
      if (Array.isArray(result)) {
        for (const item of result) {
          if (item?.value !== undefined) {
            out.push(item);
          }
        }
      } else if (result?.value !== undefined) {
        out.push(result);
      }
    }
    return out;
  };
}

/** The resource type `resolve()` yields for a reference, without fetching it (as Medplum does: from the reference text). */
function resolvedType(e: TypedValue): string | undefined {
  const value = e.value;
  let ref: string | undefined;
  if (typeof value === 'string') {
    ref = value;
  } else if (value && typeof value === 'object') {
    if (value.resource) {
      return toTypedValue(value.resource).type;
    }
    ref = value.reference ?? (value.type && value.identifier ? `${value.type}?identifier=` : undefined);
  }
  if (ref?.includes('?')) {
    return ref.split('?')[0];
  }
  if (ref?.includes('/')) {
    return ref.split('/')[0];
  }
  return undefined;
}
