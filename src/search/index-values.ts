import { toTypedValue, type FhirPathAtom, type TypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { parseDateRange, MAX_TIME, MIN_TIME, NARROW_SPAN_MS } from './date-range.js';
import { normalizeString } from './normalize.js';
import { COLUMN_PARAMS, getCompiledParams, type CompiledParam } from './parameters.js';
import { isPatientCompartmentParam, securityContextPatient } from './compartment.js';
import type { PathEvaluator } from './path-compiler.js';

/** The search index rows of one resource, per parameter type, without the owning (type, id). */
export interface IndexRows {
  string: [code: string, value: string, exact: string][];
  token: [code: string, system: string | null, value: string | null, text: string | null][];
  reference: [code: string, targetType: string | null, targetId: string | null, url: string | null][];
  /** `wide` is 1 when the range spans more than a day (see NARROW_SPAN_MS). */
  date: [code: string, lo: number, hi: number, wide: number][];
  number: [code: string, value: number][];
  quantity: [code: string, value: number, system: string | null, unit: string | null][];
  uri: [code: string, value: string][];
  /** Two-component composites whose first component is a token (code-value-quantity, ...). */
  composite: [
    code: string,
    system: string | null,
    value: string | null,
    c2System: string | null,
    c2Value: string | null,
    c2Num: number | null,
    c2Lo: number | null,
    c2Hi: number | null,
  ][];
  /** Ids of the patients whose compartment holds this resource. */
  compartment: string[];
}

type Obj = Record<string, any>;

function emptyRows(): IndexRows {
  return { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [], composite: [], compartment: [] };
}

/** Evaluates a parameter's (or composite component's) expression on a collection. */
export type ParamEvaluator = (param: { evaluate: PathEvaluator; atom: FhirPathAtom }, input: TypedValue[]) => TypedValue[];

const compiledEvaluator: ParamEvaluator = (param, input) => param.evaluate(input);

/**
 * Evaluates every search parameter of the resource's type and collects the values to index. `evaluator`
 * is only swapped by tests, to compare the compiled paths with Medplum's FHIRPath engine.
 */
export function extractIndexRows(resource: Resource, evaluator: ParamEvaluator = compiledEvaluator): IndexRows {
  const rows = emptyRows();
  const input = [toTypedValue(resource)];
  const compartment = new Set<string>();
  if (resource.resourceType === 'Patient' && resource.id) {
    compartment.add(resource.id);
  }
  const contextPatient = securityContextPatient(resource);
  if (contextPatient) compartment.add(contextPatient);
  for (const param of getCompiledParams(resource.resourceType).values()) {
    if (COLUMN_PARAMS.has(param.code) || param.type === 'special' || param.storedAs) {
      continue; // storedAs: other parameters' rows answer for it (parameters.ts)
    }
    let values: TypedValue[];
    try {
      values = evaluator(param, input);
    } catch {
      continue; // A FHIRPath the data cannot satisfy indexes nothing rather than failing the write.
    }
    for (const typed of values) {
      if (param.type === 'composite') {
        addComposite(rows, param, typed, evaluator);
      } else {
        addValue(rows, param, unwrapped(typed));
      }
    }
    if (param.type === 'reference' && isPatientCompartmentParam(resource.resourceType, param.code)) {
      for (const [code, targetType, targetId] of rows.reference) {
        if (code === param.code && targetType === 'Patient' && targetId) {
          compartment.add(targetId);
        }
      }
    }
  }
  rows.compartment = [...compartment];
  return dedupe(rows);
}

/**
 * A primitive that carries extensions (`"birthDate": "1970-01-01", "_birthDate": {...}`) comes out of
 * FHIRPath as a String/Number/Boolean object; it is indexed by its value like any other primitive.
 */
function unwrapped(typed: TypedValue): TypedValue {
  const value = typed.value;
  return value instanceof String || value instanceof Number || value instanceof Boolean ? { type: typed.type, value: value.valueOf() } : typed;
}

function addValue(rows: IndexRows, param: CompiledParam, typed: TypedValue): void {
  const value = typed.value;
  if (value === undefined || value === null) {
    return;
  }
  switch (param.type) {
    case 'string':
      for (const s of stringsOf(typed.type, value)) {
        rows.string.push([param.code, normalizeString(s), s]);
      }
      break;
    case 'token':
      addTokens(rows, param.code, typed.type, value);
      break;
    case 'reference':
      addReference(rows, param.code, value);
      break;
    case 'date': {
      const range = dateRangeOf(typed.type, value);
      if (range) {
        rows.date.push([param.code, range.lo, range.hi, range.hi - range.lo > NARROW_SPAN_MS ? 1 : 0]);
      }
      break;
    }
    case 'number':
      if (typeof value === 'number') {
        rows.number.push([param.code, value]);
      } else if (typeof value?.value === 'number') {
        rows.number.push([param.code, value.value]);
      }
      break;
    case 'quantity':
      addQuantity(rows, param.code, value);
      break;
    case 'uri':
      if (typeof value === 'string') {
        rows.uri.push([param.code, value]);
      }
      break;
  }
}

/** One row per (first-component token, second-component value) pair found on the same base element. */
function addComposite(rows: IndexRows, param: CompiledParam, item: TypedValue, evaluator: ParamEvaluator): void {
  const [first, second] = param.components ?? [];
  if (!first || !second) {
    return;
  }
  const eval1 = (c: typeof first) => {
    try {
      return evaluator(c, [item]).map(unwrapped);
    } catch {
      return [];
    }
  };
  const tokens: [string | null, string | null][] = [];
  for (const t of eval1(first)) {
    tokenTuples(t.type, t.value).forEach(([system, value]) => value !== null && tokens.push([system, value]));
  }
  const seconds: [string | null, string | null, number | null, number | null, number | null][] = [];
  for (const t of eval1(second)) {
    if (t.value === undefined || t.value === null) continue;
    switch (second.type) {
      case 'token':
        tokenTuples(t.type, t.value).forEach(([system, value]) => seconds.push([system, value, null, null, null]));
        break;
      case 'quantity':
        quantityTuples(t.value).forEach(([num, system, unit]) => seconds.push([system, unit, num, null, null]));
        break;
      case 'date': {
        const range = dateRangeOf(t.type, t.value);
        if (range) seconds.push([null, null, null, range.lo, range.hi]);
        break;
      }
      case 'string':
        stringsOf(t.type, t.value).forEach((v) => seconds.push([null, normalizeString(v), null, null, null]));
        break;
      case 'reference': {
        const ref = typeof t.value === 'string' ? t.value : t.value.reference;
        if (ref) seconds.push([null, ref, null, null, null]);
        break;
      }
    }
  }
  for (const [system, value] of tokens) {
    for (const [c2System, c2Value, c2Num, c2Lo, c2Hi] of seconds) {
      rows.composite.push([param.code, system, value, c2System, c2Value, c2Num, c2Lo, c2Hi]);
    }
  }
}

function stringsOf(type: string, value: any): string[] {
  if (typeof value === 'string') {
    return [value];
  }
  if (type === 'HumanName') {
    const parts = [...(value.prefix ?? []), ...(value.given ?? []), value.family, ...(value.suffix ?? [])].filter(Boolean);
    return [...parts, value.text ?? parts.join(' ')].filter((s): s is string => typeof s === 'string' && !!s);
  }
  if (type === 'Address') {
    const parts = [...(value.line ?? []), value.city, value.district, value.state, value.postalCode, value.country].filter(Boolean);
    return [...parts, value.text ?? parts.join(', ')].filter((s): s is string => typeof s === 'string' && !!s);
  }
  if (typeof value === 'object') {
    // Other complex types searched as strings (e.g. Annotation): index their string leaves.
    return Object.values(value as Obj).filter((v): v is string => typeof v === 'string');
  }
  return [String(value)];
}

function addTokens(rows: IndexRows, code: string, type: string, value: any): void {
  for (const [system, tokenValue, text] of tokenTuples(type, value)) {
    rows.token.push([code, system, tokenValue, text]);
  }
}

type TokenTuple = [system: string | null, code: string | null, text: string | null];

function tokenTuple(system: string | undefined, code: string | undefined, text?: string): TokenTuple {
  return [system ?? null, code ?? null, text ? normalizeString(text) : null];
}

/** (system, code, normalised display text) for each token a FHIR value carries. */
function tokenTuples(type: string, value: any): TokenTuple[] {
  if (typeof value === 'string' || typeof value === 'number') {
    return [tokenTuple(undefined, String(value))];
  }
  if (typeof value === 'boolean') {
    return [tokenTuple(undefined, value ? 'true' : 'false')];
  }
  if (type === 'CodeableConcept') {
    const out: TokenTuple[] = (value.coding ?? []).map((c: any) => tokenTuple(c.system, c.code, c.display));
    // The text gets a row of its own for :text only when no coding's display already says the same.
    const text = value.text ? tokenTuple(undefined, undefined, value.text) : undefined;
    if (text && !out.some((t) => t[2] === text[2])) {
      out.push(text);
    }
    return out;
  }
  if (type === 'Coding') {
    return [tokenTuple(value.system, value.code, value.display)];
  }
  if (type === 'Identifier') {
    return [tokenTuple(value.system, value.value, value.type?.text ?? value.type?.coding?.[0]?.display)];
  }
  if (type === 'ContactPoint') {
    return [tokenTuple(value.system, value.value)];
  }
  if (value.code !== undefined || value.value !== undefined) {
    return [tokenTuple(value.system, value.code ?? String(value.value))];
  }
  return [];
}

const REFERENCE_RE = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

function addReference(rows: IndexRows, code: string, value: any): void {
  const ref: string | undefined = typeof value === 'string' ? value : value.reference;
  if (!ref) {
    return;
  }
  const m = !ref.startsWith('#') && !ref.startsWith('urn:') ? REFERENCE_RE.exec(ref) : null;
  const isAbsolute = /^[a-z]+:/i.test(ref);
  rows.reference.push([code, m?.[1] ?? null, m?.[2] ?? null, isAbsolute || !m ? ref : null]);
}

function dateRangeOf(type: string, value: any): { lo: number; hi: number } | undefined {
  if (typeof value === 'string') {
    return parseDateRange(value);
  }
  if (type === 'Period') {
    const start = value.start ? parseDateRange(value.start) : undefined;
    const end = value.end ? parseDateRange(value.end) : undefined;
    if (!start && !end) {
      return undefined;
    }
    return { lo: start?.lo ?? MIN_TIME, hi: end?.hi ?? MAX_TIME };
  }
  if (type === 'Timing') {
    const events = (value.event ?? []).map(parseDateRange).filter(Boolean) as { lo: number; hi: number }[];
    if (!events.length) {
      return undefined;
    }
    return { lo: Math.min(...events.map((e) => e.lo)), hi: Math.max(...events.map((e) => e.hi)) };
  }
  return undefined;
}

function addQuantity(rows: IndexRows, code: string, value: any): void {
  for (const [num, system, unit] of quantityTuples(value)) {
    rows.quantity.push([code, num, system, unit]);
  }
}

/** (value, system, unit code) of a Quantity, or of both bounds of a Range. */
function quantityTuples(value: any): [number, string | null, string | null][] {
  const one = (q: any): [number, string | null, string | null] => [q.value, q.system ?? null, q.code ?? q.unit ?? q.currency ?? null];
  if (typeof value?.value === 'number') {
    return [one(value)];
  }
  // Range: index both bounds so that comparisons can find either end.
  return [value?.low, value?.high].filter((b) => typeof b?.value === 'number').map(one);
}

function dedupe(rows: IndexRows): IndexRows {
  for (const key of ['string', 'token', 'reference', 'date', 'number', 'quantity', 'uri', 'composite'] as const) {
    const list = rows[key] as unknown[][];
    if (list.length < 2) {
      continue;
    }
    const seen = new Set<string>();
    (rows[key] as unknown[][]) = list.filter((row) => {
      const k = row.join('\u0000') + row.map((v) => (v === null ? 'n' : typeof v === 'number' ? 'd' : 's')).join('');
      return seen.has(k) ? false : (seen.add(k), true);
    });
  }
  return rows;
}
