import { capitalize, tryGetDataType, type InternalSchemaElement, type TypedValue } from '@medplum/core';

/**
 * Reading one element of a FHIR JSON object with its concrete type, the way @medplum/core's FHIRPath
 * engine does (choice types such as value[x] resolved by the property present, primitive extensions `_x`
 * merged into the value, `Resource` typed by its resourceType), but with the lookups done once per
 * (type, element) instead of on every call. Shared by the structure validator and the search indexer.
 */

/** How to read one element: the JSON property names that can carry it, with their types, in definition order. */
export interface ElementAccess {
  key: string;
  element: InternalSchemaElement;
  candidates: { property: string; extensionProperty: string; type: string }[];
}

export type ElementValue = TypedValue | TypedValue[] | undefined;

/** A primitive extension (`_x`) that is not a JSON object: the resource is malformed. */
export class PrimitiveExtensionError extends Error {
  constructor(readonly property: string) {
    super(`Primitive extension must be an object: _${property}`);
  }
}

export function elementAccess(key: string, element: InternalSchemaElement): ElementAccess {
  const last = element.path.slice(element.path.lastIndexOf('.') + 1);
  const candidates: ElementAccess['candidates'] = [];
  for (const t of element.type ?? []) {
    const property = last.replace('[x]', capitalize(t.code));
    if (!candidates.some((c) => c.property === property)) {
      candidates.push({ property, extensionProperty: `_${property}`, type: t.code });
    }
  }
  return { key, element, candidates };
}

const accessByTypeAndName = new Map<string, ElementAccess | null>();

/**
 * The element a FHIRPath name designates on a type: the exact name, the choice element (`value` or
 * `valueQuantity` both name value[x]), or undefined when the type has no such element.
 */
export function findElementAccess(type: string, name: string): ElementAccess | undefined {
  const cacheKey = `${type}\u0000${name}`;
  let access = accessByTypeAndName.get(cacheKey);
  if (access === undefined) {
    access = null;
    const elements = tryGetDataType(type)?.elements;
    if (elements) {
      // Own keys only: a name such as `constructor` would otherwise find Object.prototype's.
      const has = (key: string) => Object.hasOwn(elements, key);
      let key = has(name) ? name : has(`${name}[x]`) ? `${name}[x]` : undefined;
      for (let i = 0; !key && i < name.length; i++) {
        if (name[i] >= 'A' && name[i] <= 'Z' && has(`${name.slice(0, i)}[x]`)) {
          key = `${name.slice(0, i)}[x]`;
        }
      }
      access = key ? elementAccess(key, elements[key]) : null;
    }
    accessByTypeAndName.set(cacheKey, access);
  }
  return access ?? undefined;
}

/**
 * The element's value in `obj` with its concrete type; an array for repeating elements; undefined when
 * absent or empty. Throws PrimitiveExtensionError for a `_x` that is not an object.
 */
export function readElement(obj: Record<string, unknown>, access: ElementAccess): ElementValue {
  let value: unknown;
  let extension: unknown;
  let property = access.key;
  let type = 'undefined';
  for (const candidate of access.candidates) {
    value = obj[candidate.property];
    extension = obj[candidate.extensionProperty];
    if (value !== undefined || extension !== undefined) {
      ({ property, type } = candidate);
      break;
    }
  }
  if (extension) {
    if (typeof extension !== 'object') {
      throw new PrimitiveExtensionError(property);
    }
    if (Array.isArray(value)) {
      const parts = extension as unknown[];
      const merged = value.slice();
      for (let i = 0; i < Math.max(merged.length, parts.length); i++) {
        merged[i] = withPrimitiveExtension(merged[i], parts[i]);
      }
      value = merged;
    } else if (!value && Array.isArray(extension)) {
      value = extension.map((part) => withPrimitiveExtension(undefined, part));
    } else {
      value = withPrimitiveExtension(value, extension);
    }
  }
  if (isEmptyValue(value)) {
    return undefined;
  }
  if (type === 'Element' || type === 'BackboneElement') {
    type = access.element.type[0].code;
  }
  if (Array.isArray(value)) {
    return value.map((v) => typedAs(v, type));
  }
  return typedAs(value, type);
}

/** Medplum's notion of empty: null, undefined, '', [] and {}. */
export function isEmptyValue(v: unknown): boolean {
  if (v === null || v === undefined) {
    return true;
  }
  if (typeof v === 'string') {
    return v === '';
  }
  if (typeof v === 'object') {
    const populated = ('length' in v && (v as { length: number }).length > 0) || Object.keys(v).length > 0;
    return !populated;
  }
  return false;
}

export function isResourceObject(v: unknown): v is { resourceType: string } {
  return !!v && typeof v === 'object' && 'resourceType' in v;
}

function typedAs(value: unknown, type: string): TypedValue {
  return { type: type === 'Resource' && isResourceObject(value) ? value.resourceType : type, value };
}

/** A primitive with its `_x` sibling: the value as an object (String, Number, Boolean) carrying id/extension. */
function withPrimitiveExtension(value: unknown, extension: unknown): unknown {
  if (!extension || typeof extension !== 'object') {
    return value;
  }
  const target: Record<string, unknown> =
    value === null || value === undefined ? {} : typeof value === 'object' ? { ...value } : Object(value);
  for (const key of Object.keys(extension)) {
    if (key !== '__proto__' && key !== 'constructor') {
      target[key] = (extension as Record<string, unknown>)[key];
    }
  }
  return target;
}
