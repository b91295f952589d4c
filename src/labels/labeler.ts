import type { Coding, Resource } from '@medplum/fhirtypes';
import { ACT_CODE, CONFIDENTIALITY, SENSITIVITY_DISPLAY, sensitivityOf, type SensitivityKind } from './sensitivity-value-sets.js';

const CONFIDENTIALITY_RANK: Record<string, number> = { U: 0, L: 1, M: 2, N: 3, R: 4, V: 5 };
const CONFIDENTIALITY_DISPLAY: Record<string, string> = { N: 'normal', R: 'restricted', V: 'very restricted' };

/**
 * The security labels a resource is stored with (meta.security): what the sender gave, plus the kinds
 * of sensitive information its codes denote (sensitivity-value-sets.ts) and the confidentiality code R,
 * never lower than the sender's. A resource with nothing sensitive and no labels from its sender is left
 * as it is: no confidentiality code means normal (N), and every stored resource does not grow a label.
 * Run on every version written, so labels follow the codes as they change; the sender's are kept.
 */
export function labelled<T extends Resource>(resource: T): T {
  const kinds = new Set<SensitivityKind>();
  collectKinds(resource, kinds, true);
  const given = resource.meta?.security ?? [];
  if (!kinds.size && !given.length) {
    return resource;
  }
  const security: Coding[] = given.filter((c) => c.system !== CONFIDENTIALITY);
  for (const kind of kinds) {
    if (!security.some((c) => c.system === ACT_CODE && c.code === kind)) security.push(sensitivityLabel(kind));
  }
  const sensitive = security.some((c) => c.system === ACT_CODE && isSensitivityKind(c.code));
  let level = sensitive ? 'R' : 'N';
  for (const c of given) {
    if (c.system === CONFIDENTIALITY && c.code && (CONFIDENTIALITY_RANK[c.code] ?? -1) > CONFIDENTIALITY_RANK[level]) level = c.code;
  }
  if (level !== 'N' || given.some((c) => c.system === CONFIDENTIALITY)) {
    security.push(confidentialityLabel(level));
  }
  return { ...resource, meta: { ...resource.meta, security } };
}

/**
 * The labels of a resource derived from others, such as a document (its Binary, Composition and
 * DocumentReference) from the entries it holds: every sensitivity kind any of them has, and the
 * confidentiality code its author gave it (C-CDA confidentialityCode), so that the whole is withheld
 * wherever any of its parts would be. The labelling step adds R for the kinds, as for any resource.
 */
export function derivedLabels(parts: readonly Resource[], confidentiality?: string): Coding[] {
  const kinds = new Set<SensitivityKind>();
  for (const part of parts) {
    collectKinds(part, kinds, true);
    for (const c of part.meta?.security ?? []) if (c.system === ACT_CODE && isSensitivityKind(c.code)) kinds.add(c.code);
  }
  const security: Coding[] = [...kinds].map(sensitivityLabel);
  if (confidentiality && (CONFIDENTIALITY_RANK[confidentiality] ?? -1) > CONFIDENTIALITY_RANK.N) security.push(confidentialityLabel(confidentiality));
  return security;
}

function sensitivityLabel(kind: SensitivityKind): Coding {
  return { system: ACT_CODE, code: kind, display: SENSITIVITY_DISPLAY[kind] };
}

function confidentialityLabel(level: string): Coding {
  return { system: CONFIDENTIALITY, code: level, display: CONFIDENTIALITY_DISPLAY[level] ?? level };
}

export function isSensitivityKind(code: string | undefined): code is SensitivityKind {
  return !!code && Object.hasOwn(SENSITIVITY_DISPLAY, code);
}

/** Every coding anywhere in the resource except its own meta (tags and labels are not clinical content). */
function collectKinds(value: unknown, kinds: Set<SensitivityKind>, top = false): void {
  if (Array.isArray(value)) {
    for (const item of value) collectKinds(item, kinds);
    return;
  }
  if (!value || typeof value !== 'object') {
    return;
  }
  const object = value as Record<string, unknown>;
  if (typeof object.code === 'string' && typeof object.system === 'string') {
    const kind = sensitivityOf(object.system, object.code);
    if (kind) kinds.add(kind);
  }
  for (const key in object) {
    if (top && (key === 'meta' || key === 'text')) continue;
    const child = object[key];
    if (child && typeof child === 'object') collectKinds(child, kinds);
  }
}
