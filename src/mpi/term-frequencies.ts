import type { PersonFeatures } from './features.js';

/** Fields whose agreeing value is weighed by how common it is (besides full names: name-frequency.ts). */
export const TERM_FIELDS = ['postalCode', 'locality'] as const;
export type TermField = (typeof TERM_FIELDS)[number];

/**
 * How many people of a sample bear each value of a field: `people` identities sampled, `bearers` per
 * value for the values at least MIN_BEARERS of them bear (the skewed ones; rarer values are not listed).
 */
export interface TermTable {
  people: number;
  bearers: Record<string, number>;
}
export type TermFrequencies = Partial<Record<TermField, TermTable>>;

/** Fewest bearers for a value to be listed: fewer say little about its frequency and would make the table as large as the sample. */
export const MIN_BEARERS = 5;

/**
 * Term frequencies from a sample of the index's records, counted over people, never records: one
 * person's several records (the same postal code on each) are one bearer, as issue 16 asks ("never
 * counting one person's copies as others").
 */
export function termFrequencies(sample: { enterpriseId: string; features: PersonFeatures }[]): TermFrequencies {
  const people = new Set(sample.map((s) => s.enterpriseId)).size;
  const tables: TermFrequencies = {};
  for (const field of TERM_FIELDS) {
    const bearersOf = new Map<string, Set<string>>();
    for (const { enterpriseId, features } of sample) {
      const value = features[field];
      if (!value) continue;
      const bearers = bearersOf.get(value) ?? new Set<string>();
      bearers.add(enterpriseId);
      bearersOf.set(value, bearers);
    }
    const listed = [...bearersOf].filter(([, bearers]) => bearers.size >= MIN_BEARERS);
    tables[field] = { people, bearers: Object.fromEntries(listed.map(([value, bearers]) => [value, bearers.size])) };
  }
  return tables;
}
