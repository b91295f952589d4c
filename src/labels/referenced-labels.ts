import type { Coding, Reference, Resource } from '@medplum/fhirtypes';
import type { SqlExecutor } from '../store/database.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { sensitivityKindsOf } from './label-bits.js';
import { isSensitivityKind, labelled } from './labeler.js';
import { ACT_CODE, SENSITIVITY_DISPLAY, type SensitivityKind } from './sensitivity-value-sets.js';

/**
 * The references through which a resource takes its meaning from another: a MedicationRequest for
 * `Medication/bup` is a buprenorphine prescription (42 CFR Part 2) though none of its own codes says so;
 * a DiagnosticReport whose results include an HIV viral load reveals that test; an Encounter whose
 * diagnosis is an opioid dependence is a substance-use treatment visit. Paths are dotted element names
 * from the resource; a reader can check each against the FHIR R4 resource definitions.
 */
const MEANING_REFERENCES: Readonly<Record<string, readonly string[]>> = {
  MedicationRequest: ['medicationReference', 'reasonReference'],
  MedicationStatement: ['medicationReference', 'reasonReference'],
  MedicationAdministration: ['medicationReference', 'reasonReference'],
  MedicationDispense: ['medicationReference'],
  DiagnosticReport: ['result'],
  Encounter: ['diagnosis.condition', 'reasonReference'],
  Procedure: ['reasonReference'],
  ServiceRequest: ['reasonReference'],
  CarePlan: ['addresses'],
  Observation: ['hasMember'],
};

/**
 * Labels every resource written with the sensitivity kinds of the resources it takes its meaning from
 * (MEANING_REFERENCES), looked up in the same write first (a transaction's Medication and its
 * MedicationRequest), then among the stored ones by their labels column. The labelling step of the
 * write (labeler.ts) then adds confidentiality R, as for a resource's own codes. One level deep: a
 * referenced resource carries what it references in its own labels once it is written. Labels are added
 * on each version written; a referenced resource relabelled later does not relabel what refers to it
 * (`tessera labels relabel` does).
 */
export class ReferencedLabels implements WriteObserver {
  readonly types: ReadonlySet<string> = new Set();

  async prepare(repo: Repository, resources: Resource[]): Promise<Resource[]> {
    const inWrite = new Map(resources.filter((r) => r.id).map((r) => [`${r.resourceType}/${r.id}`, r]));
    const out = [...resources];
    for (let i = 0; i < resources.length; i++) {
      out[i] = await withReferencedLabels(repo.sql, resources[i], inWrite);
    }
    return out;
  }

  async written(): Promise<void> {}

  async deleted(): Promise<void> {}
}

/**
 * The resource with the sensitivity kinds of what it takes its meaning from added to its labels (the
 * same object when none is missing). `inWrite`: resources written with it, not stored yet.
 */
export async function withReferencedLabels<T extends Resource>(sql: SqlExecutor, resource: T, inWrite: ReadonlyMap<string, Resource> = new Map()): Promise<T> {
  const targets = meaningReferences(resource);
  if (!targets.length) return resource;
  return withKinds(resource, await kindsOf(sql, targets, inWrite));
}

/**
 * The same without the database, for a write whose meaning references all lie within it (the bulk
 * path's create-only Bundles: ingest/prepared-bundle.ts); undefined when one names a resource outside
 * `inWrite`, which only the ordinary write path can look up.
 */
export function withReferencedLabelsInWrite<T extends Resource>(resource: T, inWrite: ReadonlyMap<string, Resource>): T | undefined {
  const targets = meaningReferences(resource);
  if (!targets.length) return resource;
  if (targets.some((t) => !inWrite.has(t))) return undefined;
  const kinds = new Set<SensitivityKind>();
  for (const target of targets) addPendingKinds(kinds, inWrite.get(target) as Resource);
  return withKinds(resource, kinds);
}

/** The resource with these sensitivity kinds among its labels (the same object when it has them all). */
function withKinds<T extends Resource>(resource: T, kinds: ReadonlySet<SensitivityKind>): T {
  const security = resource.meta?.security ?? [];
  const added: Coding[] = [...kinds].filter((k) => !security.some((c) => c.system === ACT_CODE && c.code === k)).map((k) => ({ system: ACT_CODE, code: k, display: SENSITIVITY_DISPLAY[k] }));
  return added.length ? { ...resource, meta: { ...resource.meta, security: [...security, ...added] } } : resource;
}

/** `Type/id` of each reference on the resource's meaning paths. */
export function meaningReferences(resource: Resource): string[] {
  const paths = MEANING_REFERENCES[resource.resourceType];
  if (!paths) return [];
  const found = new Set<string>();
  for (const path of paths) {
    for (const value of valuesAt(resource, path.split('.'))) {
      const m = /^(?:.*\/)?([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(?:\/_history\/.*)?$/.exec((value as Reference)?.reference ?? '');
      if (m) found.add(m[1]);
    }
  }
  return [...found];
}

function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => valuesAt(v, path));
  if (!path.length) return value === undefined ? [] : [value];
  if (!value || typeof value !== 'object') return [];
  return valuesAt((value as Record<string, unknown>)[path[0]], path.slice(1));
}

/** The sensitivity kinds of the referenced resources: those being written, labelled as they will be; stored ones by their labels column. */
async function kindsOf(sql: SqlExecutor, references: readonly string[], inWrite: ReadonlyMap<string, Resource>): Promise<Set<SensitivityKind>> {
  const kinds = new Set<SensitivityKind>();
  const stored = new Map<string, string[]>();
  for (const reference of references) {
    const pending = inWrite.get(reference);
    if (pending) {
      addPendingKinds(kinds, pending);
      continue;
    }
    const [type, id] = reference.split('/');
    stored.set(type, [...(stored.get(type) ?? []), id]);
  }
  for (const [type, ids] of stored) {
    const rows = await sql.query<{ labels: number | string }>(`SELECT labels FROM resource WHERE type = ? AND id IN (${ids.map(() => '?').join(', ')}) AND deleted = 0 AND labels <> 0`, [type, ...ids]);
    for (const { labels } of rows) for (const kind of sensitivityKindsOf(Number(labels))) kinds.add(kind);
  }
  return kinds;
}

/** Adds the sensitivity kinds a resource not yet stored will carry once the write labels it. */
function addPendingKinds(kinds: Set<SensitivityKind>, pending: Resource): void {
  for (const c of labelled(pending).meta?.security ?? []) if (c.system === ACT_CODE && isSensitivityKind(c.code)) kinds.add(c.code);
}
