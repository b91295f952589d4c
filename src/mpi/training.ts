import type { SqlExecutor } from '../store/database.js';
import { Random } from '../synthetic/random.js';
import { blockingKeys } from './blocking.js';
import { compareFeatures, FIELD_LEVELS, FIELDS, type ComparisonVector, type IdentifierLevel } from './comparison.js';
import { trainEm, type TrainingResult } from './em-training.js';
import type { PersonFeatures } from './features.js';
import { MatchModel, type Probabilities, type SystemProbabilities, type Thresholds } from './match-model.js';
import { DEFAULT_TARGETS, thresholdsFromPosterior, type PosteriorTargets } from './posterior-thresholds.js';
import { MpiStore } from './mpi-store.js';
import { sampleSources } from './record-sample.js';
import { termFrequencies, type TermFrequencies } from './term-frequencies.js';
import { levelsOf, type SystemLevels } from './level-probabilities.js';
import { estimateU, systemsWithoutMatches, withoutMatches } from './u-estimation.js';

/** Candidates per record in the training sample: what the linker itself would score, capped. */
const CANDIDATES_PER_RECORD = 50;

export interface TrainingOptions {
  /** Most candidate pairs for EM. */
  maxPairs: number;
  /** Records sampled for u, and random pairs drawn among them. */
  sampleRecords?: number;
  randomPairs?: number;
  seed?: number;
  /** What the thresholds are derived for (posterior-thresholds.ts). */
  targets?: PosteriorTargets;
  /** Identifier systems learned so far (the last model's), where EM starts for them. */
  startSystems?: SystemProbabilities;
  onProgress?: (stage: 'random pairs' | 'candidate pairs', done: number) => void;
}

export interface TrainedModel extends TrainingResult {
  /** Candidate pairs EM ran on, and random pairs u was counted on. */
  pairs: number;
  randomPairs: number;
  /** Share of random pairs that are candidates (share a blocking key). */
  sharedKeyShare: number;
  thresholds: Thresholds;
  targets: PosteriorTargets;
  /** Postal codes' and localities' frequencies among the people sampled (term-frequencies.ts). */
  termFrequencies: TermFrequencies;
  /** Fields and identifier systems the data held too few pairs of to learn from: kept at the starting model's (the hand priors'), each with why. */
  notLearned: string[];
}

/**
 * Fewest pairs with a field (or identifier system) on both sides, among candidates and among random
 * pairs, to learn its levels from: below either, its m and u stay those of the starting model (the hand
 * priors for a first training), and the model says so. 100 candidate pairs put a level seen in one pair
 * of ten within about a third of its value.
 */
const MIN_CANDIDATE_PAIRS = 100;
const MIN_RANDOM_PAIRS = 1_000;

/**
 * `tessera mpi train`: u counted on random pairs of a record sample, then m and the match share by EM
 * on candidate pairs (records sharing a blocking key, as the linker sees them; each pair once, at most
 * `maxPairs`), and thresholds from posterior odds. Unlabelled: nothing a steward decided is needed,
 * though rulings are what to check a model against.
 */
export async function trainFromIndex(sql: SqlExecutor, startM: Probabilities, options: TrainingOptions): Promise<TrainedModel> {
  const random = new Random(options.seed ?? 1);
  const sampled = await sampleSources(sql, options.sampleRecords ?? 20_000, random);
  const sample = sampled.map((s) => s.features);
  const frequencies = termFrequencies(sampled);
  const randomPairs = options.randomPairs ?? 1_000_000;
  const observed = estimateU(sample, randomPairs, random);
  options.onProgress?.('random pairs', randomPairs);
  const candidates = await candidatePairs(sql, options.maxPairs, (n) => options.onProgress?.('candidate pairs', n));
  const [{ records }] = await sql.query<{ records: number }>('SELECT COUNT(*) AS records FROM mpi_source');
  const floor = 0.5 / randomPairs;
  // Identifier systems with pairs enough are learned on their own; the rest share the identifier field,
  // which is learned from their pairs only.
  const inCandidates = observedIn(candidates.vectors);
  const pairsWith = (column: string) => [inCandidates.get(column) ?? 0, observed.observed.get(column) ?? 0];
  const enoughPairs = ([candidatePairs, randomPairs]: number[]) => candidatePairs >= MIN_CANDIDATE_PAIRS && randomPairs >= MIN_RANDOM_PAIRS;
  const allSystems = [...new Set([...inCandidates.keys(), ...observed.observed.keys()])].filter((column) => !(FIELDS as string[]).includes(column));
  const systems = allSystems.filter((system) => enoughPairs(pairsWith(system)));
  const pooled = allSystems.filter((system) => !systems.includes(system));
  const observations = (column: string) =>
    column === 'identifier' ? pooled.map(pairsWith).reduce(([c, r], [c2, r2]) => [c + c2, r + r2], [0, 0]) : pairsWith(column);
  const enough = (column: string) => enoughPairs(observations(column));
  const notLearned = [...FIELDS, ...pooled]
    .filter((column) => !enough(column))
    .map((column) => `${column}: ${observations(column)[0]} candidate pairs, ${observations(column)[1]} random pairs with it on both sides${pooled.includes(column) ? ' (weighed with the identifier field)' : ''}`);
  const startSystemM: SystemLevels = Object.fromEntries(systems.map((system) => [system, identifierMs(options.startSystems?.[system] ?? startM.identifier)]));
  const systemFrequencies = Object.fromEntries(systems.map((system) => [system, observed.systemFrequencies[system]]));
  let u = observed.frequencies;
  let systemU = systemFrequencies;
  let sharedKeyShare = observed.sharedKeyShare;
  let result = trainEm(candidates.vectors, startM, u, sharedKeyShare, { systems: { u: systemU, startM: startSystemM } });
  // u and m depend on each other through the same-person pairs among the random ones (nearly all of
  // which share a key): a few rounds settle it.
  for (let round = 0; round < DECONTAMINATION_ROUNDS; round++) {
    // Matches among random pairs: the candidate pairs EM calls matches, out of all pairs of records.
    const randomMatchShare = Math.min(0.5, (result.matchShare * candidates.perRecord) / Math.max(1, Number(records) - 1));
    u = withoutMatches(observed.frequencies, levelsOf(result.probabilities, 'm'), randomMatchShare, floor);
    const systemM = Object.fromEntries(Object.entries(result.identifierSystems).map(([system, levels]) => [system, identifierMs(levels)]));
    systemU = systemsWithoutMatches(systemFrequencies, systemM, randomMatchShare, floor);
    sharedKeyShare = Math.max(floor, (observed.sharedKeyShare - randomMatchShare) / (1 - randomMatchShare));
    result = trainEm(candidates.vectors, result.probabilities, u, sharedKeyShare, { systems: { u: systemU, startM: systemM } });
  }
  // What the data was too small for keeps the starting model's m and u, stated in notLearned.
  const probabilities = Object.fromEntries(FIELDS.map((field) => [field, enough(field) ? result.probabilities[field] : startM[field]])) as Probabilities;
  // A candidate pair's prior odds of being one person: the match share among candidates, over the odds
  // that EM's likelihoods carry (strangers are candidates with probability sharedKeyShare).
  const priorLogOdds = Math.log2(result.matchShare / (1 - result.matchShare)) + Math.log2(sharedKeyShare);
  const targets = options.targets ?? DEFAULT_TARGETS;
  const model = new MatchModel(probabilities, { autoLink: Infinity, review: Infinity }, result.identifierSystems, { termFrequencies: frequencies });
  const scores = candidates.vectors.map((vector) => model.decide(vector).score);
  return {
    ...result,
    probabilities,
    pairs: candidates.vectors.length,
    randomPairs,
    sharedKeyShare,
    thresholds: thresholdsFromPosterior(scores, priorLogOdds, targets),
    targets,
    notLearned,
    termFrequencies: frequencies,
  };
}

/** One identifier table's m's. */
function identifierMs(levels: Record<string, { m: number }>): Record<IdentifierLevel, number> {
  return Object.fromEntries(FIELD_LEVELS.identifier.map((l) => [l, levels[l].m])) as Record<IdentifierLevel, number>;
}

/** How many pairs have each field, and each identifier system, on both sides. */
function observedIn(vectors: ComparisonVector[]): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (column: string) => counts.set(column, (counts.get(column) ?? 0) + 1);
  for (const vector of vectors) {
    for (const field of FIELDS) if (vector[field] !== 'missing') add(field);
    for (const system of Object.keys(vector.identifierSystems ?? {})) add(system);
  }
  return counts;
}

const DECONTAMINATION_ROUNDS = 3;


/**
 * Candidate pairs (each once, at most maxPairs) and how many candidates a record has on average (c): the
 * index holds about N x c / 2 candidate pairs, so a share s of them being matches makes s x c / (N - 1)
 * of all N (N - 1) / 2 pairs matches.
 */
async function candidatePairs(sql: SqlExecutor, maxPairs: number, onProgress: (pairs: number) => void): Promise<{ vectors: ComparisonVector[]; perRecord: number }> {
  const store = new MpiStore(sql);
  const vectors: ComparisonVector[] = [];
  const seen = new Set<string>();
  let after = '';
  let scanned = 0;
  let found = 0;
  while (vectors.length < maxPairs) {
    const rows = await sql.query<{ patient_id: string; features: string }>('SELECT patient_id, features FROM mpi_source WHERE patient_id > ? ORDER BY patient_id LIMIT 1000', [after]);
    if (!rows.length) {
      break;
    }
    after = rows[rows.length - 1].patient_id;
    for (const row of rows) {
      const features = JSON.parse(row.features) as PersonFeatures;
      const candidates = await store.candidates(blockingKeys(features), row.patient_id, CANDIDATES_PER_RECORD);
      scanned++;
      found += candidates.length;
      for (const candidate of candidates) {
        const key = row.patient_id < candidate.patientId ? `${row.patient_id}|${candidate.patientId}` : `${candidate.patientId}|${row.patient_id}`;
        if (!seen.has(key) && vectors.length < maxPairs) {
          seen.add(key);
          vectors.push(compareFeatures(features, candidate.features));
        }
      }
    }
    onProgress(vectors.length);
  }
  return { vectors, perRecord: scanned ? found / scanned : 0 };
}
