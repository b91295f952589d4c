import { createHash } from 'node:crypto';
import type { Extension, Provenance, Resource } from '@medplum/fhirtypes';
import { isActiveAllergy, isNoKnownAllergy, ruleFor, type ConflictKind, type MergeRule } from './merge-rules.js';
import { isPatientCompartmentType } from '../search/compartment.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** A source record the policy let the caller read, with where it came from. */
export interface SourceRecord {
  resource: Resource;
  /** The person's source Patient record it belongs to (each participant's own record of the person). */
  sourcePatient: string;
  /** The participant that sent it (Organization reference and name), when known. */
  participant?: { reference: string; display: string };
  /** The resource as stored JSON text, when the caller has it: its length weighs it, its parse copies it. */
  json?: string;
}

export interface Conflict {
  kind: ConflictKind;
  detail: string;
}

/** One fact of the person's record, once, with every source record that says it. */
export interface MergedFact {
  type: string;
  /** Stable id derived from the source records (the same sources give the same id). */
  id: string;
  sources: SourceRecord[];
  conflicts: Conflict[];
  /** The fact's time (for the timeline and look-backs), ms. */
  time?: number;
}

export const RECORD_SYSTEM = 'https://tessera.dev/fhir/CodeSystem/record';
export const MERGED_TAG = { system: RECORD_SYSTEM, code: 'merged', display: 'Merged fact of the longitudinal record' };
export const SOURCE_EXTENSION = 'https://tessera.dev/fhir/StructureDefinition/merged-source';
export const CONFLICT_EXTENSION = 'https://tessera.dev/fhir/StructureDefinition/merge-conflict';

/** Types that are not facts of the merged record: the person's own records and the sources' provenance. */
const NOT_FACTS = new Set(['Patient', 'Provenance', 'AuditEvent', 'Consent']);
/** Whether records of this type are merged into facts of a person's record (in the compartment, not NOT_FACTS). */
export const isFactType = (type: string): boolean => isPatientCompartmentType(type) && !NOT_FACTS.has(type);

interface Building {
  rule: MergeRule;
  identity: Set<string>;
  time?: number;
  records: Prepared[];
  sources: Set<string>;
  /** The bucket keys the fact is filed under (so that a bucket lists each fact once without a scan). */
  keys: Set<string>;
}

/** A source record with what the rules read of it computed once (the merge compares each record many times). */
interface Prepared {
  record: SourceRecord;
  rule: MergeRule;
  identity: string[];
  keys: string[];
  time?: number;
  /** The rule's compared elements' values, in the rule's order. */
  values: (string | number | undefined)[];
}

/**
 * What the merge files a record under: its rule's concept keys and identifiers. A record is compared only
 * with the facts filed under one of its keys, so records of one type that share no key, directly or
 * through a chain of records, never meet: a merged search merges just that closure (merged-closure.ts).
 */
export function bucketKeys(resource: Resource): { concept: string[]; identity: string[] } {
  const rule = ruleFor(resource.resourceType);
  return { concept: rule.concept(resource as any), identity: rule.identity?.(resource as any) ?? [] };
}

/** Types whose facts are marked by looking at the person's other facts (markNoKnownAllergyConflicts). */
const JUDGED_TOGETHER = new Set(['AllergyIntolerance']);
/** Whether a fact of this type depends on more than its own closure of records (then it needs the whole type). */
export const factsJudgedTogether = (type: string): boolean => JUDGED_TOGETHER.has(type);

function prepare(record: SourceRecord): Prepared {
  const r = record.resource as any;
  const rule = ruleFor(r.resourceType);
  const { concept, identity } = bucketKeys(r);
  // Buckets: the record's concept keys and identifiers; only facts sharing one are candidates.
  const keys = [...concept.map((c) => `${r.resourceType}|${c}`), ...identity.map((i) => `${r.resourceType}#${i}`)];
  return { record, rule, identity, keys, time: rule.time?.(r), values: rule.compared.map((e) => e.value(r)) };
}

/**
 * Merges a person's source records into facts (read time, over what the policy let through: the merged
 * view can hold nothing the caller may not read). Records are taken source by source; each joins the
 * fact of its type and concept that shares an identifier with it, or else the nearest in time within the
 * rule's tolerance whose compared values agree (a disagreeing one only when none agrees), and never a
 * fact that already holds a record of its own source. Candidates come from hash buckets keyed by concept
 * and identifier, so the cost grows with the records that share a concept, not with the record squared.
 */
export function mergeRecords(records: readonly SourceRecord[]): MergedFact[] {
  const rank = new Map<string, number>();
  for (const r of records) if (!rank.has(r.sourcePatient)) rank.set(r.sourcePatient, rank.size);
  const sorted = records
    .filter((r) => !NOT_FACTS.has(r.resource.resourceType))
    .map(prepare)
    .sort((a, b) => (rank.get(a.record.sourcePatient) as number) - (rank.get(b.record.sourcePatient) as number));
  const buckets = new Map<string, Building[]>();
  const facts: Building[] = [];
  for (const p of sorted) {
    const { rule, identity, time, record } = p;
    let best: { fact: Building; score: number } | undefined;
    const candidates = new Set<Building>();
    for (const k of p.keys) for (const f of buckets.get(k) ?? []) candidates.add(f);
    for (const fact of candidates) {
      if (fact.sources.has(record.sourcePatient)) continue;
      let score: number;
      if (identity.some((i) => fact.identity.has(i))) {
        score = -1;
      } else if (rule.time) {
        if (time === undefined || fact.time === undefined || Math.abs(time - fact.time) > (rule.toleranceMs ?? 0)) continue;
        score = Math.abs(time - fact.time);
      } else {
        score = 0;
      }
      // Agreeing values first: a disagreeing record joins only when nothing agrees (it is then a conflict).
      if (disagrees(rule, fact.records[0], p)) score += 1e12;
      if (!best || score < best.score) best = { fact, score };
    }
    const fact: Building = best?.fact ?? { rule, identity: new Set(), time, records: [], sources: new Set(), keys: new Set() };
    if (!best) facts.push(fact);
    fact.records.push(p);
    fact.sources.add(record.sourcePatient);
    identity.forEach((i) => fact.identity.add(i));
    for (const k of p.keys) {
      if (fact.keys.has(k)) continue;
      fact.keys.add(k);
      const bucket = buckets.get(k);
      if (!bucket) buckets.set(k, [fact]);
      else bucket.push(fact);
    }
  }
  const merged = facts.map((f): MergedFact => {
    const refs = f.records.map((s) => `${s.record.resource.resourceType}/${s.record.resource.id}`).sort();
    const conflicts: Conflict[] = [];
    for (const other of f.records.slice(1)) {
      for (const c of conflictsBetween(f.rule, f.records[0], other)) {
        if (!conflicts.some((x) => x.detail === c.detail)) conflicts.push(c);
      }
    }
    return { type: f.rule.type, id: `m${createHash('sha1').update(refs.join(',')).digest('hex')}`, sources: f.records.map((p) => p.record), conflicts, time: f.time };
  });
  markNoKnownAllergyConflicts(merged);
  return merged;
}

const differ = (element: MergeRule['compared'][number], va: string | number | undefined, vb: string | number | undefined): boolean =>
  va !== undefined && vb !== undefined && !(element.same ? element.same(va, vb) : va === vb);

function disagrees(rule: MergeRule, a: Prepared, b: Prepared): boolean {
  return rule.compared.some((element, i) => differ(element, a.values[i], b.values[i]));
}

function conflictsBetween(rule: MergeRule, a: Prepared, b: Prepared): Conflict[] {
  const out: Conflict[] = [];
  const [ra, rb] = [a.record.resource, b.record.resource];
  rule.compared.forEach((element, i) => {
    const [va, vb] = [a.values[i], b.values[i]];
    if (differ(element, va, vb)) {
      out.push({ kind: element.conflict, detail: `${element.name}: ${describe(va as string | number)} in ${ra.resourceType}/${ra.id}, ${describe(vb as string | number)} in ${rb.resourceType}/${rb.id}` });
    }
  });
  return out;
}

const describe = (v: string | number): string => String(v).replace(/^s:/, '');

/** An active allergy in one source and "no known allergies" in another: both facts are marked. */
function markNoKnownAllergyConflicts(facts: MergedFact[]): void {
  const allergies = facts.filter((f) => f.type === 'AllergyIntolerance');
  const none = allergies.filter((f) => f.sources.some((s) => isNoKnownAllergy(s.resource)));
  const active = allergies.filter((f) => !none.includes(f) && f.sources.some((s) => isActiveAllergy(s.resource)));
  for (const n of none) {
    for (const a of active) {
      const detail = `AllergyIntolerance/${a.sources[0].resource.id} is an active allergy; AllergyIntolerance/${n.sources[0].resource.id} says no known allergies`;
      n.conflicts.push({ kind: 'allergy-vs-no-known-allergies', detail });
      a.conflicts.push({ kind: 'allergy-vs-no-known-allergies', detail });
    }
  }
}

/** A source record as a fact of its own (the source-copies view: each copy listed as it was sent). */
export function sourceFact(record: SourceRecord): MergedFact {
  const r = record.resource;
  return { type: r.resourceType, id: r.id as string, sources: [record], conflicts: [], time: ruleFor(r.resourceType).time?.(r) };
}

/** The source record a merged fact is shown as: the one that says the most (most codings, then longest). */
function richest(fact: MergedFact): SourceRecord {
  if (fact.sources.length === 1) return fact.sources[0];
  const weighed = fact.sources.map((s) => ({ s, weight: (s.json ?? JSON.stringify(s.resource)).length }));
  return weighed.reduce((a, b) => (b.weight > a.weight ? b : a)).s;
}

/**
 * The merged fact as a FHIR resource: the richest source's content, codings of every source, references to
 * the person's source records pointed at `patientId`, the merged tag, an extension per source record
 * (with its participant) and per conflict.
 */
export function factResource(fact: MergedFact, personRecords: ReadonlySet<string>, patientId: string): Resource {
  const shown = richest(fact);
  const base = JSON.parse(shown.json ?? JSON.stringify(shown.resource));
  const codeElement = ['code', 'vaccineCode', 'medicationCodeableConcept'].find((k) => base[k]?.coding);
  if (codeElement) {
    const seen = new Set<string>();
    base[codeElement].coding = fact.sources
      .flatMap((s) => (s.resource as any)[codeElement]?.coding ?? [])
      .filter((c: any) => {
        const k = `${c.system}|${c.code}`;
        return seen.has(k) ? false : (seen.add(k), true);
      });
  }
  repointPatient(base, personRecords, patientId);
  const extension: Extension[] = [
    ...(base.extension ?? []),
    ...fact.sources.map((s) => ({
      url: SOURCE_EXTENSION,
      valueReference: { reference: `${s.resource.resourceType}/${s.resource.id}`, display: s.participant?.display ?? 'unattributed source' },
    })),
    ...fact.conflicts.map((c) => ({
      url: CONFLICT_EXTENSION,
      extension: [
        { url: 'kind', valueCode: c.kind },
        { url: 'detail', valueString: c.detail },
      ],
    })),
  ];
  const lastUpdated = fact.sources.map((s) => s.resource.meta?.lastUpdated ?? '').sort().pop();
  return { ...base, id: fact.id, meta: { ...(lastUpdated ? { lastUpdated } : {}), tag: [MERGED_TAG] }, extension };
}

/** The source records (`Type/id`) a merged fact (factResource) stands for; none for any other resource. */
export function mergedFactSources(resource: Resource): string[] {
  if (!resource.meta?.tag?.some((t) => t.system === MERGED_TAG.system && t.code === MERGED_TAG.code)) return [];
  const extensions = (resource as { extension?: Extension[] }).extension ?? [];
  return extensions.filter((e) => e.url === SOURCE_EXTENSION).map((e) => e.valueReference?.reference).filter((r): r is string => !!r);
}

/** The Provenance of a merged fact: each source record as an entity, each participant as an agent. */
export function factProvenance(fact: MergedFact): Provenance {
  const agents = new Map<string, { reference?: string; display: string }>();
  for (const s of fact.sources) {
    const p = s.participant ?? { display: `the source record Patient/${s.sourcePatient}` };
    agents.set(p.display, p);
  }
  return {
    resourceType: 'Provenance',
    id: `p${fact.id.slice(1)}`,
    target: [{ reference: `${fact.type}/${fact.id}` }],
    recorded: fact.sources.map((s) => s.resource.meta?.lastUpdated ?? '').sort().pop() || new Date(0).toISOString(),
    activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'MERGE' }], text: `merged from ${fact.sources.length} source record(s)` },
    agent: [...agents.values()].map((who) => ({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }] }, who })),
    entity: fact.sources.map((s) => ({
      role: 'source',
      what: { reference: `${s.resource.resourceType}/${s.resource.id}${s.resource.meta?.versionId ? `/_history/${s.resource.meta.versionId}` : ''}`, display: s.participant?.display },
    })),
  };
}

/** Points references to any of the person's source Patient records at one Patient (in place). */
function repointPatient(value: any, personRecords: ReadonlySet<string>, patientId: string): void {
  if (Array.isArray(value)) {
    value.forEach((v) => repointPatient(v, personRecords, patientId));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string' && v.startsWith('Patient/') && personRecords.has(v.slice(8))) value[k] = `Patient/${patientId}`;
      else if (typeof v === 'object') repointPatient(v, personRecords, patientId);
    }
  }
}
