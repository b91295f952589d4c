import type { Resource } from '@medplum/fhirtypes';
import { extractIndexRows, type IndexRows } from '../search/index-values.js';
import type { HistoryEntry } from '../store/repository.js';
import type { AccessPolicy } from './access-policy.js';

/**
 * Whether the caller may see past versions of a resource that it reaches now. The access policy's row
 * condition is SQL over the search index, which holds the current version's values only; a past version
 * may have had other security labels, another patient, or another value of a granular scope's parameter
 * (an Observation relabelled, moved to the right patient, recategorised). A past version is therefore
 * shown only when it agrees with the current version on every fact the condition reads
 * (AccessPolicy.rowFacts): then the current version's verdict is its verdict too. A version that differs
 * is treated as out of reach, never judged by a second copy of the policy.
 */
export function versionReach(policy: AccessPolicy, current: Resource): (version: Resource | undefined) => boolean {
  const params = policy.rowFacts(current.resourceType, 'r');
  if (!params) return () => true;
  const currentFacts = factsOf(current, params);
  // A delete entry carries no content to disclose.
  return (version) => !version || factsOf(version, params) === currentFacts;
}

/** The values of `params` and the compartment's patients in the resource's index rows, as one comparable string. */
function factsOf(resource: Resource, params: ReadonlySet<string>): string {
  const rows = extractIndexRows(resource);
  const kinds = Object.keys(rows).filter((k) => k !== 'compartment') as Exclude<keyof IndexRows, 'compartment'>[];
  const values = kinds.flatMap((kind) => (rows[kind] as unknown[][]).filter((row) => params.has(row[0] as string)).map((row) => JSON.stringify([kind, ...row])));
  return JSON.stringify([[...rows.compartment].sort(), values.sort()]);
}

/** The history entries the caller may see, for filtering an instance's history. */
export function entriesWithinReach(policy: AccessPolicy, current: Resource, entries: readonly HistoryEntry[]): HistoryEntry[] {
  const visible = versionReach(policy, current);
  return entries.filter((e) => visible(e.resource));
}
