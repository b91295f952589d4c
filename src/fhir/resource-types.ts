import { getResourceTypes } from './definitions.js';

let known: Set<string> | undefined;

export function isKnownResourceType(type: string): boolean {
  known ??= new Set(getResourceTypes());
  return known.has(type);
}

export function allResourceTypes(): string[] {
  known ??= new Set(getResourceTypes());
  return [...known];
}
