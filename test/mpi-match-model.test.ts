import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { compareFeatures } from '../src/mpi/comparison.js';
import { personFeatures, SSN_SYSTEM } from '../src/mpi/features.js';
import { MatchModel, PRIORS } from '../src/mpi/match-model.js';
import { posterior, thresholdsFromPosterior } from '../src/mpi/posterior-thresholds.js';
import { estimateU, withoutMatches } from '../src/mpi/u-estimation.js';
import { levelsOf } from '../src/mpi/level-probabilities.js';
import { identityPopulation } from '../src/synthetic/identity-population.js';
import { trainEm } from '../src/mpi/em-training.js';
import { FIELDS, type ComparisonVector } from '../src/mpi/comparison.js';
import { Random } from '../src/synthetic/random.js';
import { blockingKeys } from '../src/mpi/blocking.js';

const model = new MatchModel();

function person(given: string, family: string, birthDate: string, extra: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    name: [{ given: given.split(' '), family }],
    birthDate,
    gender: 'male',
    address: [{ line: ['12 Main Street'], city: 'Springfield', postalCode: '02118' }],
    telecom: [{ system: 'phone', value: '617-555-0100' }],
    ...extra,
  };
}

function decide(a: Patient, b: Patient) {
  return model.decide(compareFeatures(personFeatures(a), personFeatures(b)));
}

describe('MPI match model (hand-set priors)', () => {
  it('links a nickname (Bill / William) when the rest agrees', () => {
    const d = decide(person('William', 'Smith', '1970-05-12'), person('Bill', 'Smith', '1970-05-12', { address: [{ line: ['12 Main St.'], postalCode: '02118-4410' }] }));
    assert.equal(d.outcome, 'auto-link', JSON.stringify(d));
    assert.equal(d.contributions.find((c) => c.field === 'firstName')?.level, 'nickname');
  });

  it('links a birth date with day and month swapped, and a one-digit typo', () => {
    assert.equal(decide(person('John', 'Smith', '1980-04-03'), person('John', 'Smith', '1980-03-04')).outcome, 'auto-link');
    assert.equal(decide(person('John', 'Smith', '1980-04-03'), person('Jon', 'Smith', '1980-04-08')).outcome, 'auto-link');
  });

  it('links across a hyphenated surname and diacritics', () => {
    const d = decide(
      person('José', 'García-López', '1975-11-30', { gender: 'male' }),
      person('Jose', 'Garcia', '1975-11-30', { gender: 'male' }),
    );
    assert.equal(d.outcome, 'auto-link', JSON.stringify(d.contributions));
  });

  it('never auto-links twins: same surname, birth date, address and phone, different first names', () => {
    const d = decide(person('Anna', 'Lee', '2001-02-03', { gender: 'female' }), person('Emma', 'Lee', '2001-02-03', { gender: 'female' }));
    assert.notEqual(d.outcome, 'auto-link');
    assert.ok(d.vetoes.includes('first names differ'));
  });

  it('never auto-links Jr and Sr at one address', () => {
    const d = decide(person('John', 'Smith Jr', '1990-06-01'), person('John', 'Smith Sr', '1962-06-01'));
    assert.notEqual(d.outcome, 'auto-link');
    assert.ok(d.vetoes.some((v) => v.includes('Jr/Sr')));
  });

  it('never auto-links two records whose SSNs differ', () => {
    const ssn = (value: string) => ({ identifier: [{ system: SSN_SYSTEM, value }] });
    const d = decide(person('John', 'Smith', '1980-04-03', ssn('123-45-6780')), person('John', 'Smith', '1980-04-03', ssn('234-56-7891')));
    assert.notEqual(d.outcome, 'auto-link');
    const same = decide(person('John', 'Smith', '1980-04-03', ssn('123-45-6780')), person('Johnny', 'Smith', '1980-04-03', ssn('123456780')));
    assert.equal(same.outcome, 'auto-link');
  });

  it('does not link a common name and birth date at another address without other evidence', () => {
    const d = decide(
      person('Maria', 'Garcia', '1985-01-01', { gender: 'female' }),
      person('Maria', 'Garcia', '1985-01-01', { gender: 'female', address: [{ line: ['9 Elm Road'], postalCode: '73301' }], telecom: [{ system: 'phone', value: '512-555-0199' }] }),
    );
    assert.notEqual(d.outcome, 'auto-link');
  });

  it('takes one keystroke in a short name, and a birth date one day off, for the same person', () => {
    const vector = compareFeatures(personFeatures(person('James', 'Smith', '1980-04-20')), personFeatures(person('Jkmes', 'Smuth', '1980-04-19')));
    assert.deepEqual([vector.firstName, vector.surname, vector.birthDate], ['similar', 'similar', 'one-digit']);
    assert.equal(compareFeatures(personFeatures(person('Ann', 'Lee', '1980-04-20')), personFeatures(person('Ana', 'Lee', '1980-04-20'))).firstName !== 'similar', true, 'three letters: too short to call a slip');
  });

  it('counts neighbours on one street as different addresses, and a reformatted address as the same', () => {
    const street = (line: string) => compareFeatures(personFeatures(person('Ann', 'Lee', '1990-01-01', { address: [{ line: [line] }] })), personFeatures(person('Ann', 'Lee', '1990-01-01'))).street;
    assert.equal(street('48 Main Street'), 'different');
    assert.equal(street('12 Main St.'), 'similar');
    assert.equal(street('12 Mian Street'), 'similar', 'a typo in the street name');
  });

  it('weighs a shared full name by its frequency in the index: priors while the index is young, less for a common name, more (bounded) for a rare one', () => {
    assert.ok(Math.abs(model.nameFrequencyWeight({ others: 0, records: 10 })) < 0.01, 'a young index: the priors');
    const common = model.nameFrequencyWeight({ others: 400, records: 200_000 });
    assert.ok(common < -3.5 && common > -5, `one record in 500 bears it: ${common}`);
    assert.equal(model.nameFrequencyWeight({ others: 0, records: 5_000_000 }), 4, 'bounded above');
    assert.equal(model.nameFrequencyWeight({ others: 1_000_000, records: 1_000_001 }), -8, 'bounded below');

    // Name, birth date and gender agree; moved, and one side has no phone.
    const a = person('Michael', 'Brown', '1983-07-19');
    const b = person('Michael', 'Brown', '1983-07-19', { telecom: [], address: [{ line: ['77 Quarry Lane'], postalCode: '01852' }] });
    const vector = compareFeatures(personFeatures(a), personFeatures(b));
    assert.equal(model.decide(vector).outcome, 'review', 'name and birth date alone: a steward decides (issue 16)');
    const commonName = model.decide(vector, { others: 400, records: 200_000 });
    assert.equal(commonName.outcome, 'review');
    assert.equal(commonName.contributions.at(-1)?.field, 'nameFrequency');
    assert.ok(Math.abs(commonName.contributions.reduce((s, c) => s + c.weight, 0) - commonName.score) < 1e-9);
    assert.equal(model.decide(vector, { others: 1, records: 200_000 }).outcome, 'auto-link');
  });

  it('waives the "only name and birth date" phone veto for a name the index knows to be rare', () => {
    const a = person('Ottoline', 'Vandersloot', '1983-07-19');
    const b = person('Ottoline', 'Vandersloot', '1983-07-19', { telecom: [{ system: 'phone', value: '413-555-0188' }], address: [{ line: ['9 Elm Road'], postalCode: '73301' }] });
    const vector = compareFeatures(personFeatures(a), personFeatures(b));
    assert.ok(model.decide(vector, { others: 40, records: 200_000 }).vetoes.some((v) => v.startsWith('only name and birth date')));
    const rare = model.decide(vector, { others: 0, records: 200_000 });
    assert.deepEqual(rare.vetoes, []);
    assert.equal(rare.outcome, 'auto-link');
  });

  it('lets name and birth date alone link when a model that measured birth dates finds no one else the record could be: bearers of the name and sharers of first name and birth date, counted', () => {
    // Name, birth date and gender agree; moved, no phone on one side: nothing else corroborates.
    const a = person('Michael', 'Brown', '1983-07-19');
    const b = person('Michael', 'Brown', '1983-07-19', { telecom: [], address: [{ line: ['77 Quarry Lane'], postalCode: '01852' }] });
    const vector = compareFeatures(personFeatures(a), personFeatures(b));
    assert.equal(model.decide(vector, { others: 0, records: 3_000 }).outcome, 'review', 'the hand priors assume a namesake born that day: the veto stands');
    // A model that measured birth dates (as training on a generated population of 3,000 people did: u 4.6e-5) and names.
    const measured = new MatchModel({
      ...PRIORS,
      surname: { ...PRIORS.surname, exact: { m: 0.86, u: 0.00089 } },
      firstName: { ...PRIORS.firstName, exact: { m: 0.77, u: 0.0092 } },
      birthDate: { ...PRIORS.birthDate, exact: { m: 0.92, u: 0.000046 } },
    });
    assert.ok(measured.expectedNamesakes({ others: 0, records: 3_000 }, 'exact') < 0.001);
    assert.equal(measured.decide(vector, { others: 0, records: 3_000 }).outcome, 'auto-link', 'nobody else in the index bears the name: no namesake born that day to fear');
    const crowded = measured.decide(vector, { others: 30, records: 3_000 });
    assert.ok(crowded.vetoes.includes('only name and birth date agree'), 'thirty other people of that name: a steward decides');
    assert.equal(model.decide(vector).outcome, 'review', 'no count of the name: the veto stands');
    assert.ok(measured.decide(vector, { others: 0, records: 10_000, dateSharers: 600 }).vetoes.includes('only name and birth date agree'), 'six hundred people of that first name born that day: a namesake is likely, the veto stands');
    const birthDateMissing = compareFeatures(personFeatures(a), personFeatures({ ...b, birthDate: undefined }));
    assert.equal(measured.expectedNamesakes({ others: 0, records: 3_000 }, birthDateMissing.birthDate), Infinity);
  });

  it('explains every decision field by field, and the weights add up to the score', () => {
    const d = decide(person('William', 'Smith', '1970-05-12'), person('Bill', 'Smith', '1970-05-12'));
    assert.equal(d.contributions.length, FIELDS.length);
    assert.ok(Math.abs(d.contributions.reduce((s, c) => s + c.weight, 0) - d.score) < 1e-9);
    assert.equal(d.contributions.find((c) => c.field === 'ssn')?.weight, 0, 'missing carries no weight');
  });
});

describe('MPI blocking keys', () => {
  const keys = (p: Patient) => new Set(blockingKeys(personFeatures(p)));
  const shares = (a: Patient, b: Patient) => [...keys(a)].some((k) => keys(b).has(k));

  it('a true match with one error in any single field still shares a key', () => {
    const base = person('William', 'Smith', '1970-05-12');
    const variants: Patient[] = [
      person('Bill', 'Smith', '1970-05-12', { address: [], telecom: [] }),
      person('William', 'Smyth', '1970-05-12', { address: [], telecom: [] }),
      person('William', 'Jones', '1970-05-12', { telecom: [] }),
      person('William', 'Smith', '1970-12-05', { address: [], telecom: [] }),
      person('Xavier', 'Quinn', '1955-01-01', { address: [] }),
    ];
    for (const variant of variants) {
      assert.ok(shares(base, variant), JSON.stringify(variant.name));
    }
  });

  it('unrelated people share none', () => {
    assert.ok(!shares(person('William', 'Smith', '1970-05-12'), person('Anna', 'Lee', '1990-01-01', { address: [{ postalCode: '73301' }], telecom: [] })));
  });
});

describe('MPI training', () => {

  it('EM recovers m and the match share from unlabelled pairs drawn from a known model, u held at its measured values', () => {
    const random = new Random(42);
    const truth = structuredClone(PRIORS);
    truth.surname.exact = { m: 0.8, u: 0.01 };
    truth.surname.different = { m: 0.12, u: 0.973 };
    truth.birthDate.exact = { m: 0.85, u: 0.002 };
    truth.birthDate.different = { m: 0.095, u: 0.975 };
    const draw = (dist: Record<string, { m: number; u: number }>, key: 'm' | 'u') => {
      let x = random.next();
      for (const [level, p] of Object.entries(dist)) {
        if ((x -= p[key]) <= 0) return level;
      }
      return Object.keys(dist).at(-1) as string;
    };
    const pairs: ComparisonVector[] = [];
    for (let i = 0; i < 40_000; i++) {
      const key = random.chance(0.2) ? 'm' : 'u';
      pairs.push(Object.fromEntries(FIELDS.map((f) => [f, draw(truth[f], key)])) as unknown as ComparisonVector);
    }
    // Every pair here is a candidate (none was selected by blocking keys): sharedKeyShare 1.
    const trained = trainEm(pairs, PRIORS, levelsOf(truth, 'u'), 1);
    assert.ok(Math.abs(trained.matchShare - 0.2) < 0.02, `match share ${trained.matchShare}`);
    assert.ok(Math.abs(trained.probabilities.surname.exact.m - 0.8) < 0.03, `m ${trained.probabilities.surname.exact.m}`);
    assert.ok(Math.abs(trained.probabilities.birthDate.exact.m - 0.85) < 0.03, `m ${trained.probabilities.birthDate.exact.m}`);
    assert.equal(trained.probabilities.surname.exact.u, 0.01, 'u is not re-estimated');
    assert.ok(trained.iterations < 500);
  });

  it('u counted on random pairs of a population is how often two different people agree', () => {
    const records = [...identityPopulation({ seed: 3, persons: 3000 })].map((r) => personFeatures(r.patient));
    const { frequencies: u, sharedKeyShare } = estimateU(records, 200_000, new Random(5));
    // Few strangers share a blocking key (a surname sound and birth year, a phone...).
    assert.ok(sharedKeyShare > 0 && sharedKeyShare < 0.01, `shared key ${sharedKeyShare}`);
    // Two random records: about one in two share a gender, few share a surname, very few a birth date or
    // an SSN (and those mostly because one random pair in about 6,000 is the same person: withoutMatches).
    assert.ok(u.gender.same > 0.4 && u.gender.same < 0.6, `gender ${u.gender.same}`);
    assert.ok(u.birthDate.exact < 0.001, `birth date ${u.birthDate.exact}`);
    assert.ok(u.surname.exact < 0.02 && u.surname.different > 0.9, `surname ${u.surname.exact}`);
    assert.ok(u.ssn.exact < 0.001, `ssn ${u.ssn.exact}`);
    for (const field of FIELDS) {
      const total = Object.values(u[field]).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-9, `${field} sums to ${total}`);
    }
  });

  it('the same-person pairs among random pairs are taken out of u', () => {
    const f = levelsOf(PRIORS, 'u');
    f.ssn = { exact: 0.0005, 'one-edit': 0.0001, different: 0.9994 };
    const m = levelsOf(PRIORS, 'm');
    const u = withoutMatches(f, m, 0.0005, 1e-7);
    // 0.0005 of the pairs are matches, 97 % of which share an SSN: nearly all exact agreement was theirs.
    assert.ok(u.ssn.exact < 0.00003, `ssn ${u.ssn.exact}`);
    assert.ok(Math.abs(u.gender.same - 0.5) < 0.001);
    // More matches than the frequency can hold: floored, never zero or negative.
    const floored = withoutMatches(f, m, 0.01, 1e-7);
    assert.ok(floored.ssn.exact > 0 && floored.ssn.exact < 1e-6, `ssn ${floored.ssn.exact}`);
  });

  it('a trained model\'s thresholds follow from the posterior: links meet the target precision as a whole, review holds the rest of the expected matches', () => {
    // Scores of candidate pairs (made up: 900 clear matches, a middle band, 5,000 clear non-matches), prior log2-odds -10.
    const scores = [...Array(900).fill(30), ...Array.from({ length: 200 }, (_, i) => 20 - i * 0.1), ...Array(5000).fill(-5)];
    const t = thresholdsFromPosterior(scores, -10, { precision: 0.999, recall: 0.995 });
    const linked = scores.filter((s) => s >= t.autoLink);
    const expectedPrecision = linked.reduce((sum, s) => sum + posterior(s, -10), 0) / linked.length;
    assert.ok(expectedPrecision >= 0.999, `expected precision ${expectedPrecision}`);
    // One step lower would break the target: the threshold is the lowest that meets it.
    const lower = scores.filter((s) => s >= t.autoLink - 0.1);
    assert.ok(lower.reduce((sum, s) => sum + posterior(s, -10), 0) / lower.length < 0.999);
    assert.ok(t.review < t.autoLink && t.review > -5, JSON.stringify(t));
    const expected = scores.reduce((sum, s) => sum + posterior(s, -10), 0);
    const belowReview = scores.filter((s) => s < t.review).reduce((sum, s) => sum + posterior(s, -10), 0);
    assert.ok(belowReview <= 0.005 * expected, `${belowReview} of ${expected} expected matches below review`);
    // A stricter target asks a higher score.
    assert.ok(thresholdsFromPosterior(scores, -10, { precision: 0.99999, recall: 0.995 }).autoLink > t.autoLink);
  });
});

describe('MPI term frequencies of postal codes and localities (a learned model)', () => {
  // Synthetic: 10,000 people sampled, one postal code borne by 3,000 of them (a city's single code), the
  // other codes rare; counted over identities, so one person's many records are one bearer.
  const tables = { postalCode: { people: 10_000, bearers: { '10001': 3_000, '02118': 40 } } };
  const learned = new MatchModel(PRIORS, undefined, {}, { termFrequencies: tables });
  const postalWeight = (model: MatchModel, code: string) => {
    const a = person('Ann', 'Lee', '1990-01-01', { address: [{ line: ['1 High St'], postalCode: code }] });
    const b = person('Ann', 'Lee', '1990-01-01', { telecom: [], address: [{ line: ['9 Low Rd'], postalCode: code }] });
    return model.decide(compareFeatures(personFeatures(a), personFeatures(b))).contributions.find((c) => c.field === 'postalCode')?.weight as number;
  };

  it('weighs a postal code by how many people bear it: a city-wide code says less than the average, a rare one the average', () => {
    const average = postalWeight(model, '10001');
    assert.equal(postalWeight(model, '02118'), average, 'the hand priors have no frequencies: every code weighs the same');
    const common = postalWeight(learned, '10001');
    const listed = postalWeight(learned, '02118');
    const unlisted = postalWeight(learned, '55555');
    assert.ok(Math.abs(common - Math.log2(PRIORS.postalCode.same.m / 0.3)) < 1e-9, `log2(m / 0.3): ${common}`);
    assert.ok(common < listed && listed <= average, `${common} < ${listed} <= ${average}`);
    assert.equal(unlisted, average, 'a code fewer than five people bear weighs the average');
    // Codes as rare on average as FEBRL's (u 0.001): one everyone bears would fall by nearly ten bits.
    const rareCodes = { ...PRIORS, postalCode: { same: { m: 0.65, u: 0.001 }, different: { m: 0.35, u: 0.999 } } };
    const crowded = new MatchModel(rareCodes, undefined, {}, { termFrequencies: { postalCode: { people: 10_000, bearers: { '10001': 10_000 } } } });
    assert.ok(Math.abs(postalWeight(crowded, '10001') - (Math.log2(0.65 / 0.001) - 6)) < 1e-9, 'a code everyone bears takes six bits at most');
  });

  it('counts bearers as people, not records, and lists only values five people or more bear', async () => {
    const { termFrequencies } = await import('../src/mpi/term-frequencies.js');
    const features = (code: string) => personFeatures(person('Ann', 'Lee', '1990-01-01', { address: [{ postalCode: code }] }));
    const sample = [
      ...Array.from({ length: 12 }, () => ({ enterpriseId: 'one-person', features: features('90210') })),
      ...Array.from({ length: 6 }, (_, i) => ({ enterpriseId: `p${i}`, features: features('30303') })),
    ];
    const tf = termFrequencies(sample);
    assert.equal(tf.postalCode?.people, 7);
    assert.deepEqual(tf.postalCode?.bearers, { '30303': 6 }, "one person's twelve records are one bearer: not listed");
  });
});
