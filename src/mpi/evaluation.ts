import { dispatch } from '../engine/fhir-router.js';
import { requestFor } from '../engine/fhir-request.js';
import { FhirError } from '../fhir/outcome.js';
import type { Repository } from '../store/repository.js';
import { compareFeatures } from './comparison.js';
import type { LabelledRecord } from './labelled-records.js';
import type { MatchDecision, MatchModel } from './match-model.js';
import type { PersonFeatures } from './features.js';

/**
 * `tessera mpi evaluate`: a labelled sample loaded through the normal write path, one record at a time in
 * file order (each linked incrementally, as a feed would), then the partition the index built scored
 * against the truth, pair by pair.
 */
export interface LoadedSample {
  /** Source Patient id -> person, for the records the store accepted. */
  personOf: Map<string, string>;
  /** Records the store refused, with where and why. */
  refused: string[];
  seconds: number;
}

/**
 * `upkeep`: what `tessera serve` runs on a timer (model-upkeep.ts), run here after every `every` records
 * so that the load sees the model change as a live index would.
 */
export async function loadSample(repo: Repository, records: LabelledRecord[], onProgress?: (done: number) => void, upkeep?: { every: number; run: () => Promise<unknown> }): Promise<LoadedSample> {
  const started = performance.now();
  const personOf = new Map<string, string>();
  const refused: string[] = [];
  for (const [i, record] of records.entries()) {
    try {
      const res = await dispatch(repo, { ...requestFor('POST', 'Patient', { baseUrl: 'urn:tessera', body: record.patient }), prefer: 'return=minimal' });
      const id = /Patient\/([^/]+)/.exec(res.location ?? '')?.[1];
      if (id) personOf.set(id, record.person);
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      refused.push(`${record.where}: ${err.message}`);
    }
    if ((i + 1) % 200 === 0) onProgress?.(i + 1);
    if (upkeep && (i + 1) % upkeep.every === 0) await upkeep.run();
  }
  if (upkeep) await upkeep.run();
  return { personOf, refused, seconds: (performance.now() - started) / 1000 };
}

/** A pair listed for the steward: each field's level and weight. */
export interface ExplainedPair {
  patientA: string;
  patientB: string;
  person: [string, string];
  decision: MatchDecision;
}

export interface LinkingQuality {
  records: number;
  persons: number;
  enterprises: number;
  truePairs: number;
  linkedPairs: number;
  correctPairs: number;
  precision: number;
  recall: number;
  f1: number;
  /** Share of true pairs whose records share a blocking key: the most recall blocking allows. */
  pairsCompleteness: number;
  /** Open review pairs between records still in two identities, and the share of records in them. */
  reviewPairs: number;
  reviewShare: number;
  falseLinks: ExplainedPair[];
  missedPairs: ExplainedPair[];
}

const pairsOf = (n: number): number => (n * (n - 1)) / 2;

/** Scores the index's partition of the loaded records against the truth; `explainUpTo` pairs of each kind are explained. */
export async function scoreLinking(repo: Repository, model: MatchModel, personOf: Map<string, string>, explainUpTo = 200): Promise<LinkingQuality> {
  const sources = await repo.sql.query<{ patient_id: string; enterprise_id: string; features: string }>('SELECT patient_id, enterprise_id, features FROM mpi_source');
  const enterpriseOf = new Map<string, string>();
  const features = new Map<string, PersonFeatures>();
  for (const s of sources) {
    if (!personOf.has(s.patient_id)) continue;
    enterpriseOf.set(s.patient_id, s.enterprise_id);
    features.set(s.patient_id, JSON.parse(s.features) as PersonFeatures);
  }
  const keysOf = new Map<string, Set<string>>();
  for (const row of await repo.sql.query<{ key: string; patient_id: string }>('SELECT key, patient_id FROM mpi_block')) {
    const set = keysOf.get(row.patient_id) ?? new Set<string>();
    set.add(row.key);
    keysOf.set(row.patient_id, set);
  }
  const group = <K>(key: (id: string) => K) => {
    const out = new Map<K, string[]>();
    for (const id of enterpriseOf.keys()) out.set(key(id), [...(out.get(key(id)) ?? []), id]);
    return out;
  };
  const byPerson = group((id) => personOf.get(id) as string);
  const byEnterprise = group((id) => enterpriseOf.get(id) as string);
  const explain = (a: string, b: string): ExplainedPair => ({
    patientA: a,
    patientB: b,
    person: [personOf.get(a) as string, personOf.get(b) as string],
    decision: model.decide(compareFeatures(features.get(a) as PersonFeatures, features.get(b) as PersonFeatures)),
  });
  let truePairs = 0;
  let reachable = 0;
  const missedPairs: ExplainedPair[] = [];
  let missed = 0;
  for (const ids of byPerson.values()) {
    truePairs += pairsOf(ids.length);
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        const [ka, kb] = [keysOf.get(ids[i]) ?? new Set<string>(), keysOf.get(ids[j]) ?? new Set<string>()];
        if ([...ka].some((k) => kb.has(k))) reachable++;
        if (enterpriseOf.get(ids[i]) !== enterpriseOf.get(ids[j]) && missed++ < explainUpTo) missedPairs.push(explain(ids[i], ids[j]));
      }
    }
  }
  let linkedPairs = 0;
  let correctPairs = 0;
  const falseLinks: ExplainedPair[] = [];
  for (const ids of byEnterprise.values()) {
    linkedPairs += pairsOf(ids.length);
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        if (personOf.get(ids[i]) === personOf.get(ids[j])) correctPairs++;
        else if (falseLinks.length < explainUpTo) falseLinks.push(explain(ids[i], ids[j]));
      }
    }
  }
  const open = await repo.sql.query<{ patient_a: string; patient_b: string }>(
    `SELECT p.patient_a, p.patient_b FROM mpi_pair p JOIN mpi_source sa ON sa.patient_id = p.patient_a
       JOIN mpi_source sb ON sb.patient_id = p.patient_b AND sb.enterprise_id <> sa.enterprise_id WHERE p.status = 'open'`,
  );
  const inReview = new Set(open.flatMap((p) => [p.patient_a, p.patient_b]).filter((id) => personOf.has(id)));
  const precision = linkedPairs ? correctPairs / linkedPairs : 1;
  const recall = truePairs ? correctPairs / truePairs : 1;
  return {
    records: enterpriseOf.size,
    persons: byPerson.size,
    enterprises: byEnterprise.size,
    truePairs,
    linkedPairs,
    correctPairs,
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
    pairsCompleteness: truePairs ? reachable / truePairs : 1,
    reviewPairs: open.length,
    reviewShare: enterpriseOf.size ? inReview.size / enterpriseOf.size : 0,
    falseLinks,
    missedPairs,
  };
}

/** The figures, one line each, as the CLI and the bench print them. */
export function qualitySummary(q: LinkingQuality): string {
  return [
    `records ${q.records}, people ${q.persons}, identities built ${q.enterprises}`,
    `true pairs ${q.truePairs}, linked pairs ${q.linkedPairs}, correct ${q.correctPairs}`,
    `precision ${q.precision.toFixed(4)}, recall ${q.recall.toFixed(4)}, F1 ${q.f1.toFixed(4)}`,
    `pairs completeness ${q.pairsCompleteness.toFixed(4)}`,
    `review queue: ${q.reviewPairs} open pairs, ${(q.reviewShare * 100).toFixed(2)}% of records in them`,
  ].join('\n');
}

/** A Markdown report for a data steward: the figures, then every false link and missed pair explained. */
export function qualityReport(title: string, q: LinkingQuality, notes: string[]): string {
  const table = (pairs: ExplainedPair[]) =>
    pairs.length
      ? [
          '| records | people | outcome | score | fields (level: weight) | vetoes |',
          '|---|---|---|---|---|---|',
          ...pairs.map((p) => {
            const fields = p.decision.contributions.filter((c) => c.level !== 'missing').map((c) => `${c.field}${c.system ? ` (${c.system})` : ''} ${c.level}: ${c.weight.toFixed(1)}`).join('; ');
            return `| ${p.patientA} ${p.patientB} | ${p.person.join(' / ')} | ${p.decision.outcome} | ${p.decision.score.toFixed(1)} | ${fields} | ${p.decision.vetoes.join('; ')} |`;
          }),
        ].join('\n')
      : 'None.';
  return [
    `# ${title}`,
    '',
    '```',
    qualitySummary(q),
    '```',
    '',
    `## False links (${q.linkedPairs - q.correctPairs}; two people in one identity)`,
    '',
    table(q.falseLinks),
    '',
    `## Missed pairs (${q.truePairs - q.correctPairs}; one person in two identities${q.missedPairs.length < q.truePairs - q.correctPairs ? `, the first ${q.missedPairs.length} listed` : ''})`,
    '',
    'Outcome, score and vetoes are those of the pair on its own (without name frequency); the index links a record to an identity through its best-scoring member.',
    '',
    table(q.missedPairs),
    '',
    ...(notes.length ? ['## Notes on the sample', '', ...notes.map((n) => `- ${n}`)] : []),
    '',
  ].join('\n');
}
