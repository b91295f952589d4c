import type { Filter } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { equivalentCodings } from '../../record/code-maps.js';
import { ruleFor } from '../../record/merge-rules.js';
import { bucketKeys, factsJudgedTogether } from '../../record/merged-record.js';
import type { Repository } from '../../store/repository.js';
import type { FhirRequest } from '../fhir-request.js';
import { reachableRecord, type PatientRecord, type Person, type RecordEntry } from './patient-record.js';

/** Seed records beyond which the closure is not worth listing in rounds: the type's whole listing is one query. */
const MAX_SEEDS = 500;
/** Keys one closure may gather before it is left to the type's whole listing (every key is an index lookup). */
const MAX_KEYS = 500;

/**
 * The person's records of `type` the caller may read that could share a fact with the seeds (ids): the
 * seeds, every record sharing a bucket key with one of them (a concept key, codes widened by the code maps
 * as the merge compares them, or an identifier), and so on until a round finds no new key.
 *
 * Why merging just these forms the same facts as merging the whole type (mergeRecords): a record is
 * compared only with the facts filed under its own keys, and a fact is filed under the keys of the records
 * it holds, so every fact lies within one set of records linked by shared keys, and what a record joins
 * depends only on the records of its set taken before it. The closure is a union of such sets, listed
 * in full, and the merge takes records in one fixed order (merged-view.ts: by source record, type and
 * id), so each record of the closure meets the same candidates in the same order as in the whole merge.
 *
 * Undefined where the closure cannot be decided, and the caller merges the whole type: a rule without key
 * searches (Encounter's organisation identifier, content hashes, the identical-content fallback), facts
 * judged against the person's other facts (allergies beside "no known allergies"), a key no search
 * finds exactly (a concept known only by its text, an identifier no parameter indexes), or too many seeds
 * or keys. Every round is the person's listing (patient-record.ts) under the caller's read access, cut
 * down by search criteria: the access policy decides what is read, as for the whole view.
 */
export async function closureRecord(repo: Repository, person: Person, req: FhirRequest, type: string, seeds: readonly Resource[]): Promise<PatientRecord | undefined> {
  const search = ruleFor(type).keySearch;
  if (!search || factsJudgedTogether(type) || !seeds.length || seeds.length > MAX_SEEDS) return undefined;
  const list = (where: Filter[]) => reachableRecord(repo, person.focal.id as string, req, { types: [type], references: false, where, person });
  const found = new Map<string, RecordEntry>();
  const asked = new Set<string>();
  // The first keys are the seeds' as the search that found them read them; a seed no round lists (rewritten
  // since, or one the caller may search but not read) is then listed by id, and its keys followed.
  let round = nextCriteria(search, seeds.map((resource) => ({ resource, json: JSON.stringify(resource) })), asked);
  let byId = false;
  while (round) {
    if (!round.length) {
      const unlisted = byId ? [] : seeds.filter((r) => !found.has(r.id as string));
      if (!unlisted.length) break;
      round = [{ code: '_id', operator: 'eq' as Filter['operator'], value: unlisted.map((r) => escaped(r.id as string)).join(',') }];
      byId = true;
    }
    const listed = (await Promise.all(round.map((f) => list([f])))).flatMap((r) => r.entries);
    // A record listed twice (rewritten meanwhile) is taken as last read, and its keys are followed.
    for (const e of listed) found.set(e.id, e);
    round = nextCriteria(search, listed.map((e) => ({ resource: JSON.parse(e.json) as Resource, json: e.json })), asked);
    if (round && asked.size > MAX_KEYS) return undefined;
  }
  return round ? { ...person, entries: [...found.values()] } : undefined;
}

/**
 * The search criteria that find the records sharing a key with `records` not asked before (one filter per
 * parameter, its values OR-ed), or undefined when one of their keys no search finds exactly.
 */
function nextCriteria(search: { concept: string; identity?: string[] }, records: readonly { resource: Resource; json: string }[], asked: Set<string>): Filter[] | undefined {
  const concepts = new Set<string>();
  const identifiers = new Set<string>();
  for (const { resource, json } of records) {
    // A key is `system|code`: a system holding a bar would be split in the wrong place (no URI holds one).
    if (SYSTEM_WITH_BAR.test(json)) return undefined;
    const { concept, identity } = bucketKeys(resource);
    for (const key of concept) {
      if (!isCoding(key)) return undefined;
      if (!asked.has(`concept ${key}`)) concepts.add(key);
    }
    for (const key of identity) {
      if (!search.identity?.length || !isCoding(key)) return undefined;
      if (!asked.has(`identity ${key}`)) identifiers.add(key);
    }
  }
  concepts.forEach((k) => asked.add(`concept ${k}`));
  identifiers.forEach((k) => asked.add(`identity ${k}`));
  const filter = (code: string, values: string[]): Filter => ({ code, operator: 'eq' as Filter['operator'], value: values.map(escaped).join(',') });
  const out: Filter[] = [];
  // A concept key is the standard coding after the maps: every coding the maps send to it holds it.
  if (concepts.size) out.push(filter(search.concept, [...concepts].flatMap(widenedCodings)));
  if (identifiers.size) for (const code of search.identity ?? []) out.push(filter(code, [...identifiers]));
  return out;
}

const SYSTEM_WITH_BAR = /"system"\s*:\s*"[^"]*\|/;

/**
 * Whether a key is a `system|value` token a search finds exactly: a concept known only by its text
 * (`text|...`) is not (`:text` matches words, not the whole text), nor a system that holds a bar.
 */
const isCoding = (key: string): boolean => {
  const bar = key.indexOf('|');
  return bar > 0 && bar < key.length - 1 && key.slice(0, bar) !== 'text';
};

/** Every `system|code` the code maps send to the same standard coding as `key`. */
function widenedCodings(key: string): string[] {
  const bar = key.indexOf('|');
  return equivalentCodings(key.slice(0, bar), key.slice(bar + 1)).map((c) => `${c.system}|${c.code}`);
}

/** A search value with the characters that separate values escaped (`,`, `$` and the escape itself). */
const escaped = (value: string): string => value.replace(/[\\,$]/g, (c) => `\\${c}`);
