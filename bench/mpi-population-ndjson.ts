/**
 * npx tsx bench/mpi-population-ndjson.ts --persons 3000 > population.ndjson
 *
 * The generated population of `npm run bench:mpi` (same seed) as NDJSON Patients, the truth in an
 * identifier of urn:tessera:bench:person, in generation order: the input of `tessera mpi evaluate
 * --truth population.ndjson --truth-system urn:tessera:bench:person [--train --report r.md]`, so the
 * generated population is measured exactly as a labelled sample is (one by one, file order, incremental).
 */
import { arg } from './args.js';
import { identityPopulation } from '../src/synthetic/identity-population.js';

export const TRUTH_SYSTEM = 'urn:tessera:bench:person';
const PERSONS = Number(arg('persons', '3000'));
const SEED = Number(arg('seed', '20261125'));

for (const record of identityPopulation({ seed: SEED, persons: PERSONS })) {
  const truth = { system: TRUTH_SYSTEM, value: String(record.personId) };
  process.stdout.write(`${JSON.stringify({ ...record.patient, identifier: [...(record.patient.identifier ?? []), truth] })}\n`);
}
