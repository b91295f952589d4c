import {
  createConstraintIssue,
  createOperationOutcomeIssue,
  createStructureIssue,
  deepEquals,
  deepIncludes,
  evalFhirPathTyped,
  fhirTypeToJsType,
  getDataType,
  isPrimitiveType,
  parseFhirPath,
  toTypedValue,
  validationRegexes,
  type Constraint,
  type FhirPathAtom,
  type InternalSchemaElement,
  type InternalTypeSchema,
  type TypedValue,
} from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { isRealFhirDate } from './calendar.js';
import { constraintScope, hasAnyElement } from './constraint-scope.js';
import {
  elementAccess,
  isEmptyValue,
  isResourceObject,
  PrimitiveExtensionError,
  readElement,
  type ElementAccess,
  type ElementValue,
} from './element-values.js';

/**
 * Structural validation of a resource against the R4 StructureDefinitions, compiled once per type.
 *
 * It applies the rules of @medplum/core's `validateResource` (cardinality, JSON types, primitive formats,
 * unknown properties, choice types, primitive extensions, error-level invariants evaluated with Medplum's
 * FHIRPath engine), reading the same parsed StructureDefinitions, and reports the same issues at the same
 * paths; test/structure-validator.test.ts holds it to Medplum's result on the official R4 examples,
 * Synthea and mutated resources. Medplum walks every element through generic typed-value wrappers and
 * cost about 350 µs per resource (docs/performance.md); this walks the plain JSON with per-type plans.
 *
 * Where it deliberately differs, it is stricter and says why: a complex-typed element holding a JSON
 * number or boolean (Medplum lets it through silently), and a primitive extension (`_x`) that is not an
 * object (Medplum throws a plain Error, which would surface as a server error instead of a 422).
 */
export function validateStructure(resource: Resource): OperationOutcomeIssue[] {
  const walk = new StructureWalk(resource);
  return walk.run();
}

/** Constraints Medplum does not evaluate: ele-1 is implied by the empty checks; the others it documents as unsupported or legacy. */
const SKIPPED_CONSTRAINTS = new Set(['ele-1', 'dom-3', 'org-1', 'sdf-19']);

interface ElementPlan extends ElementAccess {
  constraints: Constraint[];
}

interface TypePlan {
  schema: InternalTypeSchema;
  constraints: Constraint[];
  elements: ElementPlan[];
  /** Choice elements by the JSON key that names them ("valueQuantity" -> index of "value[x]"), filled lazily. */
  choiceByKey: Map<string, number | undefined>;
  /** The element a JSON key can carry ("gender", "_gender", "valueQuantity"), filled lazily. */
  elementByKey: Map<string, number | undefined>;
  /** Elements that must be present: visited even when the object has no key for them. */
  required: boolean[];
}

const plans = new Map<string, TypePlan>();
const atoms = new Map<string, FhirPathAtom>();
const UCUM_VALUE = toTypedValue('http://unitsofmeasure.org');

function planFor(type: string): TypePlan {
  let plan = plans.get(type);
  if (!plan) {
    const schema = getDataType(type); // throws Medplum's "Unknown data type" OperationOutcome, as its validator does
    plan = {
      schema,
      constraints: errorConstraints(schema.constraints),
      elements: Object.entries(schema.elements).map(([key, element]) => planElement(key, element)),
      choiceByKey: new Map(),
      elementByKey: new Map(),
      required: Object.values(schema.elements).map((element) => element.min > 0),
    };
    plans.set(type, plan);
  }
  return plan;
}

function planElement(key: string, element: InternalSchemaElement): ElementPlan {
  return { ...elementAccess(key, element), constraints: errorConstraints(element.constraints) };
}

function errorConstraints(constraints: Constraint[] | undefined): Constraint[] {
  return (constraints ?? []).filter((c) => c.severity === 'error' && !SKIPPED_CONSTRAINTS.has(c.key));
}

/** Per invariant: the context elements it can read (undefined: it may read more), src/fhir/constraint-scope.ts. */
const scopes = new Map<string, string[] | undefined>();
/** Per invariant and context type: whether it holds on a value with none of those elements (undefined: it could not be evaluated). */
const vacuousResults = new Map<string, boolean | undefined>();

function scopeOf(constraint: Constraint): string[] | undefined {
  if (!scopes.has(constraint.expression)) {
    scopes.set(constraint.expression, constraintScope(constraint.expression));
  }
  return scopes.get(constraint.expression);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype;
}

function atomFor(expression: string): FhirPathAtom {
  let atom = atoms.get(expression);
  if (!atom) {
    atom = parseFhirPath(expression);
    atoms.set(expression, atom);
  }
  return atom;
}

/** Keys come from clients: ones that name no element are remembered only up to a bound, so sending new ones cannot grow the cache without end. */
const MAX_UNKNOWN_KEYS_REMEMBERED = 1000;

function rememberKey(cache: Map<string, number | undefined>, key: string, found: number | undefined): void {
  if (found !== undefined || cache.size < MAX_UNKNOWN_KEYS_REMEMBERED) {
    cache.set(key, found);
  }
}

/** The index of the choice element ("value[x]") a JSON key such as "valueQuantity" or "_valueString" names. */
function choiceIndex(plan: TypePlan, key: string): number | undefined {
  if (plan.choiceByKey.has(key)) {
    return plan.choiceByKey.get(key);
  }
  const name = key.startsWith('_') ? key.slice(1) : key;
  let found: number | undefined;
  for (let i = 1; i <= name.length && found === undefined; i++) {
    if (i === name.length || (name[i] >= 'A' && name[i] <= 'Z')) {
      const index = plan.elements.findIndex((e) => e.key === `${name.slice(0, i)}[x]`);
      found = index >= 0 ? index : undefined;
    }
  }
  rememberKey(plan.choiceByKey, key, found);
  return found;
}

/** The element a JSON key may carry: the element of that name (or `_name`), else the choice element it names. */
function elementIndex(plan: TypePlan, key: string): number | undefined {
  if (plan.elementByKey.has(key)) {
    return plan.elementByKey.get(key);
  }
  const name = key.startsWith('_') ? key.slice(1) : key;
  const exact = plan.elements.findIndex((e) => e.key === name);
  const found = exact >= 0 ? exact : choiceIndex(plan, key);
  rememberKey(plan.elementByKey, key, found);
  return found;
}

class StructureWalk {
  private readonly issues: OperationOutcomeIssue[] = [];
  private readonly resources: Resource[] = [];
  private readonly root: TypedValue;

  constructor(private readonly resource: Resource) {
    this.root = { type: resource.resourceType, value: resource };
  }

  run(): OperationOutcomeIssue[] {
    const plan = planFor(this.resource.resourceType);
    const path = plan.schema.path;
    this.checkConstraints(plan.constraints, this.root, path);
    if (holdsNull(this.resource)) {
      checkObjectForNull(this.resource as unknown as Record<string, unknown>, path, this.issues);
    }
    this.object(this.resource, plan, path, path);
    return this.issues;
  }

  /** `plainPath` is the element path without array indexes, `path` the instance path with them (as Medplum reports). */
  private object(value: unknown, plan: TypePlan, plainPath: string, path: string): void {
    const isResource = isResourceObject(value);
    if (isResource) {
      this.resources.push(value as Resource);
    }
    const obj = (value || {}) as Record<string, unknown>;
    // Only the elements the object has a key for, and the required ones, can yield anything: the others
    // are not read at all (an element read for nothing cost more than the rest of a walk). Still in
    // definition order, so issues come in the order Medplum reports them.
    // Anything else (an array or string where an object belongs) is read like Medplum does, element by
    // element, inherited properties such as an array's `filter` included.
    const plain = isPlainObject(obj);
    const visit = plain ? plan.required.slice() : plan.required.map(() => true);
    for (const key of plain ? Object.keys(obj) : []) {
      const index = elementIndex(plan, key);
      if (index !== undefined) {
        visit[index] = true;
      }
    }
    const resolved: ElementValue[] = new Array(plan.elements.length);
    for (let i = 0; i < plan.elements.length; i++) {
      if (visit[i]) {
        resolved[i] = this.property(obj, plan.elements[i], plainPath, path);
      }
    }
    this.checkAdditionalProperties(obj, plan, resolved, path);
    if (isResource) {
      this.resources.pop();
    }
  }

  private property(obj: Record<string, unknown>, plan: ElementPlan, parentPlainPath: string, parentPath: string): ElementValue {
    const resolved = this.resolve(obj, plan, parentPath);
    const element = plan.element;
    if (resolved === undefined) {
      if (element.min > 0) {
        this.issue(`${parentPath}.${plan.key}`, 'Missing required property');
      }
      return undefined;
    }
    const plainPath = `${parentPlainPath}.${plan.key}`;
    const isArray = Array.isArray(resolved);
    const values = isArray ? resolved : [resolved];
    const valuePaths = values.map((_, i) => (isArray ? `${parentPath}.${plan.key}[${i}]` : `${parentPath}.${plan.key}`));
    if (!!element.isArray !== isArray) {
      this.issue(plainPath, isArray ? 'Expected single value for property' : 'Expected array of values for property');
    } else {
      if (values.length < element.min || values.length > element.max) {
        const max = Number.isFinite(element.max) ? element.max : '*';
        this.issue(element.path, `Invalid number of values: expected ${element.min}..${max}, but found ${values.length}`);
      }
      if (!matchesSpecifiedValue(resolved, element)) {
        this.issue(plainPath, 'Value did not match expected pattern');
      }
      for (let i = 0; i < values.length; i++) {
        this.checkConstraints(plan.constraints, values[i], valuePaths[i]);
        this.checkValue(values[i], valuePaths[i]);
      }
    }
    for (let i = 0; i < values.length; i++) {
      const { type, value } = values[i];
      if (isPrimitiveType(type)) {
        continue;
      }
      if (typeof value === 'number' || typeof value === 'boolean') {
        this.issue(valuePaths[i], `Invalid JSON type: expected an object for ${type}, but got ${typeof value}`);
      }
      // Whatever the JSON holds is walked as the type (as Medplum does): required children come out missing,
      // and a string's or array's indexes come out as unknown properties.
      this.object(value, planFor(type), plainPath, valuePaths[i]);
    }
    return resolved;
  }

  private resolve(obj: Record<string, unknown>, plan: ElementPlan, parentPath: string): ElementValue {
    try {
      return readElement(obj, plan);
    } catch (err) {
      if (err instanceof PrimitiveExtensionError) {
        this.issue(`${parentPath}._${err.property}`, 'Primitive extension must be an object');
        return undefined;
      }
      throw err;
    }
  }

  private checkValue(value: TypedValue, path: string): void {
    if (isPrimitiveType(value.type)) {
      this.checkPrimitive(value, path);
    } else if (isEmptyValue(value.value)) {
      this.issue(path, 'Invalid empty non-primitive value');
    }
  }

  /** A primitive, or a primitive with extensions (a String/Number/Boolean object carrying id and extension). */
  private checkPrimitive(typedValue: TypedValue, path: string): void {
    const raw: unknown = typedValue.value;
    if (!raw || typeof raw !== 'object') {
      this.checkPrimitiveValue(typedValue.type, raw, path);
      return;
    }
    const unwrapped: unknown = raw.valueOf();
    if (unwrapped === raw) {
      this.object(raw, planFor('Element'), path, path); // extensions without a value
      return;
    }
    this.checkPrimitiveValue(typedValue.type, unwrapped, path);
    const primitiveKeys = new Set(Object.keys(unwrapped as object));
    const rest = Object.entries(raw).filter(([k]) => !primitiveKeys.has(k));
    if (rest.length) {
      this.object(Object.fromEntries(rest), planFor('Element'), path, path);
    }
  }

  private checkPrimitiveValue(type: string, value: unknown, path: string): void {
    const expected = (fhirTypeToJsType as Record<string, string>)[type];
    if (!expected) {
      this.issue(path, `Invalid JSON type: ${type} is not a valid FHIR type`);
      return;
    }
    if (typeof value !== expected) {
      if (value !== null) {
        this.issue(path, `Invalid JSON type: expected ${expected}, but got ${typeof value}`);
      }
      return;
    }
    if (expected === 'string') {
      const str = value as string;
      if (!str.trim()) {
        this.issue(path, 'String must contain non-whitespace content');
      } else if (str.length > 1024 * 1024) {
        this.issue(path, 'String cannot be larger than 1 MB');
      } else if (validationRegexes[type] && !validationRegexes[type].test(str)) {
        this.issue(path, `Invalid ${type} format`);
      } else if ((type === 'date' || type === 'dateTime' || type === 'instant') && !isRealFhirDate(str)) {
        this.issue(path, `Invalid ${type}: no such day in the calendar`);
      }
    } else if (expected === 'number') {
      const n = value as number;
      if (!Number.isFinite(n)) {
        this.issue(path, 'Invalid numeric value');
      } else if ((type === 'integer' || type === 'positiveInt' || type === 'unsignedInt') && !Number.isInteger(n)) {
        this.issue(path, 'Expected number to be an integer');
      } else if (type === 'positiveInt' && n <= 0) {
        this.issue(path, 'Expected number to be positive');
      } else if (type === 'unsignedInt' && n < 0) {
        this.issue(path, 'Expected number to be non-negative');
      }
    }
  }

  private checkAdditionalProperties(value: Record<string, unknown>, plan: TypePlan, resolved: ElementValue[], path: string): void {
    const elements = plan.schema.elements;
    for (const key of Object.keys(value)) {
      if (key === 'resourceType') {
        continue;
      }
      const choice = choiceIndex(plan, key);
      if (choice !== undefined && resolved[choice] !== undefined) {
        continue;
      }
      // Own keys only: `in` would find Object.prototype's names (constructor, toString, __proto__) as elements.
      if (!Object.hasOwn(elements, key) && !(key.startsWith('_') && Object.hasOwn(elements, key.slice(1)))) {
        this.issue(`${path}.${key}`, `Invalid additional property "${key}"`);
      }
    }
  }

  /** Error-level invariants; like Medplum, the first one that fails on a value is reported. */
  private checkConstraints(constraints: Constraint[], value: TypedValue, path: string): void {
    for (const constraint of constraints) {
      let holds = this.vacuously(constraint, value);
      if (holds === undefined) {
        try {
          holds = this.evaluate(constraint, value);
        } catch (err) {
          this.issues.push(
            createOperationOutcomeIssue('error', 'processing', 'Error evaluating invariant expression', path, {
              fhirpath: constraint.expression,
              error: err,
            }),
          );
          holds = false;
        }
      }
      if (!holds) {
        this.issues.push(createConstraintIssue(path, constraint));
        return;
      }
    }
  }

  private evaluate(constraint: Constraint, value: TypedValue): boolean {
    const result = evalFhirPathTyped(atomFor(constraint.expression), [value], this.variables(value));
    return result.length === 1 && result[0].value === true;
  }

  /** The invariant's result when the value has none of the elements it reads: the same as on an empty object. */
  private vacuously(constraint: Constraint, value: TypedValue): boolean | undefined {
    const scope = scopeOf(constraint);
    if (!scope || !isPlainObject(value.value) || hasAnyElement(value.value, scope)) {
      return undefined;
    }
    const key = `${value.type}\u0000${constraint.expression}`;
    if (!vacuousResults.has(key)) {
      let result: boolean | undefined;
      try {
        result = this.evaluate(constraint, { type: value.type, value: {} });
      } catch {
        result = undefined; // evaluated on each value then, reporting its error as before
      }
      vacuousResults.set(key, result);
    }
    return vacuousResults.get(key);
  }

  private variables(context: TypedValue): Record<string, TypedValue> {
    return {
      '%context': context,
      '%ucum': UCUM_VALUE,
      '%resource': toTypedValue(this.resources[this.resources.length - 1] ?? this.resource),
      '%rootResource': this.root,
    };
  }

  private issue(path: string, text: string): void {
    this.issues.push(createStructureIssue(path, text));
  }
}

function matchesSpecifiedValue(value: TypedValue | TypedValue[], element: InternalSchemaElement): boolean {
  if (!element.pattern && !element.fixed) {
    return true;
  }
  const plain = Array.isArray(value) ? value.map((v) => ({ type: v.type, value: v.value })) : { type: value.type, value: value.value };
  if (element.pattern && !deepIncludes(plain, element.pattern)) {
    return false;
  }
  return !(element.fixed && !deepEquals(plain, element.fixed));
}

/** Whether a null (or an undefined array item) is anywhere inside: the walk naming each one, paths built for every property, runs only then. */
function holdsNull(value: unknown): boolean {
  if (value === null) {
    return true;
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item === undefined || holdsNull(item)) return true;
    }
    return false;
  }
  if (typeof value === 'object') {
    for (const key in value) {
      if (holdsNull((value as Record<string, unknown>)[key])) return true;
    }
  }
  return false;
}

/** JSON null is allowed only inside an array of primitives whose `_x` partner has an entry at that index. */
function checkObjectForNull(obj: Record<string, unknown>, path: string, issues: OperationOutcomeIssue[]): void {
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    const propertyPath = `${path}.${key}`;
    if (value === null) {
      issues.push(createStructureIssue(propertyPath, 'Invalid null value'));
    } else if (Array.isArray(value)) {
      const partner = obj[key.startsWith('_') ? key.slice(1) : `_${key}`] as unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (item === undefined) {
          issues.push(createStructureIssue(`${propertyPath}[${i}]`, 'Invalid undefined value'));
        } else if (item === null && !partner?.[i]) {
          issues.push(createStructureIssue(`${propertyPath}[${i}]`, 'Invalid null value'));
        } else if (item && typeof item === 'object') {
          checkObjectForNull(item as Record<string, unknown>, `${propertyPath}[${i}]`, issues);
        }
      }
    } else if (typeof value === 'object') {
      checkObjectForNull(value as Record<string, unknown>, propertyPath, issues);
    }
  }
}
