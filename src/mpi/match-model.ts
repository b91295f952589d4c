import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field, type IdentifierLevel } from './comparison.js';
import { TERM_FIELDS, type TermField, type TermFrequencies } from './term-frequencies.js';

/**
 * Fellegi-Sunter record linkage. For each field and agreement level, m is the probability of that level
 * when the two records are the same person and u when they are not; the level contributes log2(m/u) to
 * the pair's score (positive: evidence for a match). `missing` contributes nothing.
 *
 * PRIORS are the hand-set starting point; `tessera mpi train` re-estimates m and u from the data with EM.
 */
export type Probabilities = { [F in Field]: Record<string, { m: number; u: number }> };

/**
 * Per identifier system (its URI), each level's m and u, learned by `tessera mpi train` where the data
 * holds enough pairs of that system. A system not listed is weighed with the `identifier` field's
 * probabilities (the hand prior, or what was learned over all systems together).
 */
export type SystemProbabilities = Record<string, Record<IdentifierLevel, { m: number; u: number }>>;

export const PRIORS: Probabilities = {
  surname: { exact: { m: 0.9, u: 0.01 }, 'compound-part': { m: 0.03, u: 0.002 }, similar: { m: 0.04, u: 0.005 }, 'sound-alike': { m: 0.01, u: 0.01 }, different: { m: 0.02, u: 0.973 } },
  firstName: {
    exact: { m: 0.85, u: 0.01 },
    nickname: { m: 0.05, u: 0.002 },
    similar: { m: 0.04, u: 0.003 },
    initial: { m: 0.02, u: 0.02 },
    'sound-alike': { m: 0.01, u: 0.01 },
    different: { m: 0.03, u: 0.955 },
  },
  middleInitial: { same: { m: 0.9, u: 0.1 }, different: { m: 0.1, u: 0.9 } },
  birthDate: { exact: { m: 0.93, u: 0.002 }, transposed: { m: 0.015, u: 0.0003 }, 'one-digit': { m: 0.03, u: 0.003 }, 'year-only': { m: 0.01, u: 0.02 }, different: { m: 0.015, u: 0.975 } },
  gender: { same: { m: 0.98, u: 0.5 }, different: { m: 0.02, u: 0.5 } },
  ssn: { exact: { m: 0.97, u: 0.00001 }, 'one-edit': { m: 0.02, u: 0.0001 }, different: { m: 0.01, u: 0.99989 } },
  // Any other person-level identifier system: a number one person keeps (typos aside), shared by almost no
  // one else. `different` is strong evidence against, though weaker than for the SSN: member ids are reissued.
  identifier: { exact: { m: 0.9, u: 0.00001 }, 'one-edit': { m: 0.05, u: 0.0001 }, different: { m: 0.05, u: 0.99989 } },
  phone: { shared: { m: 0.6, u: 0.001 }, different: { m: 0.4, u: 0.999 } },
  // People hold several addresses; a shared one is near-personal (households share some).
  email: { shared: { m: 0.6, u: 0.0005 }, different: { m: 0.4, u: 0.9995 } },
  postalCode: { same: { m: 0.65, u: 0.05 }, different: { m: 0.35, u: 0.95 } },
  street: { similar: { m: 0.55, u: 0.01 }, different: { m: 0.45, u: 0.99 } },
  locality: { same: { m: 0.7, u: 0.05 }, different: { m: 0.3, u: 0.95 } },
  suffix: { same: { m: 0.95, u: 0.5 }, different: { m: 0.05, u: 0.5 } },
};

/**
 * A model stored before a field or level existed, completed with the priors for what it lacks (a hand
 * prior stands wherever the data has not been learned from yet).
 */
export function completeProbabilities(p: Partial<Probabilities>): Probabilities {
  return Object.fromEntries(
    FIELDS.map((field) => [field, Object.fromEntries(FIELD_LEVELS[field].map((level) => [level, p[field]?.[level] ?? PRIORS[field][level]]))]),
  ) as Probabilities;
}

export interface Thresholds {
  /** At or above: link automatically (unless a veto applies). */
  autoLink: number;
  /** At or above (and below autoLink, or vetoed): a possible match for a data steward. */
  review: number;
}

/** The hand-set priors' thresholds, in score units (bits of evidence), tuned with bench:mpi. */
export const DEFAULT_THRESHOLDS: Thresholds = { autoLink: 20, review: 14 };

/** A trained model's thresholds come from the posterior match probability of its candidate pairs: posterior-thresholds.ts. */

export type MatchOutcome = 'auto-link' | 'review' | 'no-match';

/** How many other source records bear the full name a pair shares, out of how many (name-frequency.ts). */
export interface SharedName {
  others: number;
  records: number;
  /** Other people sharing the record's first name and birth date (its `fd:` blocking key), when counted. */
  dateSharers?: number;
}

/**
 * Name-frequency weighting. The priors' u for an exact surname and an exact first name assume any full
 * name is as rare as their product (1 in 10,000 records); the records the index holds say how rare this
 * one is. PSEUDO_RECORDS of prior evidence keep a young index (or a small one) at the priors, and the
 * bounds keep one field's frequency from outweighing the rest of the comparison.
 */
const PSEUDO_RECORDS = 10_000;
const NAME_WEIGHT_MIN = -8;
const NAME_WEIGHT_MAX = 4;
/** A shared name this much rarer than the priors assume is evidence enough to waive the phone veto. */
const RARE_NAME_WEIGHT = 2;
/**
 * Name and birth date alone are enough when fewer than this many people of the index besides the
 * candidate are expected to bear the name and share the birth date (expectedNamesakes): the complement
 * of the default target precision (posterior-thresholds.ts), so such a link is one person as often as
 * the links as a whole must be.
 */
const NAMESAKE_RISK = 0.001;
/** Most a common postal code or locality weighs under the field's average: a town of millions still says something. */
const TF_BELOW = 6;

export interface MatchDecision {
  outcome: MatchOutcome;
  score: number;
  /** Each field's level and the weight it contributed, for the steward's "why"; `nameFrequency` when the pair shares a full name. */
  contributions: { field: Field | 'nameFrequency'; level: string; weight: number; system?: string }[];
  /** Why an otherwise high score was not linked automatically. */
  vetoes: string[];
}

export class MatchModel {
  private readonly weights: { [F in Field]: Record<string, number> };

  private readonly systemWeights: Record<string, Record<string, number>>;

  readonly probabilities: Probabilities;

  constructor(
    probabilities: Probabilities = PRIORS,
    readonly thresholds: Thresholds = DEFAULT_THRESHOLDS,
    readonly identifierSystems: SystemProbabilities = {},
    /** What a learned model holds besides: the stored version it was made from, its term frequencies. */
    readonly learned: { version?: number; termFrequencies?: TermFrequencies } = {},
  ) {
    this.probabilities = completeProbabilities(probabilities);
    const weightsOf = (levels: Record<string, { m: number; u: number }>) => Object.fromEntries(Object.entries(levels).map(([level, { m, u }]) => [level, Math.log2(m / u)]));
    this.weights = Object.fromEntries(FIELDS.map((field) => [field, weightsOf(this.probabilities[field])])) as MatchModel['weights'];
    this.systemWeights = Object.fromEntries(Object.entries(identifierSystems).map(([system, levels]) => [system, weightsOf(levels)]));
  }

  /** The stored model (mpi_model.version) this was made from; absent for the hand priors. */
  get version(): number | undefined {
    return this.learned.version;
  }

  /**
   * The weight of a postal code or locality agreeing on `value`: log2(m / the share of people bearing
   * it), as Splink's term-frequency adjustment, for the values the learned model lists (the common
   * ones); never above the field's average weight (a value's rarity in a sample is uncertain, and a
   * household shares its code whatever its people) nor more than TF_BELOW under it. Unlisted values,
   * and every value under the hand priors, weigh the average.
   */
  private termWeight(field: TermField, value: string | undefined, average: number): number {
    const table = this.learned.termFrequencies?.[field];
    const bearers = value === undefined ? undefined : table?.bearers[value];
    if (!table || bearers === undefined) return average;
    const share = bearers / Math.max(table.people, 1);
    return Math.min(average, Math.max(average - TF_BELOW, Math.log2(this.probabilities[field].same.m / share)));
  }

  /** The weight of an identifier level under one system: its own when learned, else the `identifier` field's. */
  identifierWeight(system: string, level: IdentifierLevel): number {
    return this.systemWeights[system]?.[level] ?? this.weights.identifier[level];
  }

  /**
   * Each field's contribution; identifiers one per system both records carry (each system is its own
   * evidence: a national id and an insurance member id agreeing are two facts).
   */
  private fieldContributions(vector: ComparisonVector): MatchDecision['contributions'] {
    return FIELDS.flatMap((field): MatchDecision['contributions'] => {
      const level = vector[field];
      if (field === 'identifier' && vector.identifierSystems) {
        return Object.entries(vector.identifierSystems).map(([system, l]) => ({ field, level: l, weight: this.identifierWeight(system, l), system }));
      }
      if (level === 'missing') return [{ field, level, weight: 0 }];
      const average = this.weights[field][level];
      const term = level === 'same' && (TERM_FIELDS as readonly string[]).includes(field) ? (field as TermField) : undefined;
      return [{ field, level, weight: term ? this.termWeight(term, vector.agreed?.[term], average) : average }];
    });
  }

  /**
   * The weight of sharing a full name borne by `others` other records out of `records`: log2 of how much
   * rarer (positive) or commoner (negative) the name is than the priors assume.
   */
  nameFrequencyWeight({ others, records }: SharedName): number {
    const assumed = this.probabilities.surname.exact.u * this.probabilities.firstName.exact.u;
    const observed = (others + PSEUDO_RECORDS * assumed) / (records + PSEUDO_RECORDS);
    return Math.min(NAME_WEIGHT_MAX, Math.max(NAME_WEIGHT_MIN, Math.log2(assumed / observed)));
  }

  /**
   * How many people besides the candidate are expected to bear this name and a birth date agreeing with
   * the record's at this level, estimated two ways, the larger kept: the other bearers of the full name
   * (counted, plus the PSEUDO_RECORDS prior's share of a bearer, as for the name's weight), each sharing
   * the birth date with probability u of the level; and the other people sharing first name and birth
   * date (counted), each bearing the surname with probability u(surname exact). What the "only name and
   * birth date agree" veto guards against, counted instead of assumed. Under the hand priors (one
   * pseudo-bearer, a birth date shared by one stranger in 500) it never falls below NAMESAKE_RISK: the
   * priors know nothing of this population. A model learned from the index has measured how rarely
   * strangers share a birth date, and a name few others bear then leaves no one else the record could be,
   * while thirty Michael Browns, or a thousand people born on one day, keep the veto.
   */
  expectedNamesakes({ others, dateSharers }: SharedName, birthDate: ComparisonVector['birthDate']): number {
    const u = birthDate === 'missing' ? undefined : this.probabilities.birthDate[birthDate]?.u;
    if (u === undefined) return Infinity;
    const pseudoBearers = PSEUDO_RECORDS * this.probabilities.surname.exact.u * this.probabilities.firstName.exact.u;
    return Math.max((others + pseudoBearers) * u, (dateSharers ?? 0) * this.probabilities.surname.exact.u);
  }

  /**
   * The number of other people sharing first name and birth date from which expectedNamesakes exceeds
   * NAMESAKE_RISK whatever the other counts: counting beyond it changes no decision (1 under the priors).
   */
  get decisiveDateSharers(): number {
    return Math.floor(NAMESAKE_RISK / this.probabilities.surname.exact.u) + 1;
  }

  /** `sharedName`: given when the two records bear the same full name (fullNameKey). */
  decide(vector: ComparisonVector, sharedName?: SharedName): MatchDecision {
    const contributions = this.fieldContributions(vector);
    const nameWeight = sharedName ? this.nameFrequencyWeight(sharedName) : 0;
    if (sharedName) {
      contributions.push({ field: 'nameFrequency', level: `${sharedName.others} of ${sharedName.records}`, weight: nameWeight });
    }
    const score = contributions.reduce((sum, c) => sum + c.weight, 0);
    const rareName = !!sharedName && (nameWeight >= RARE_NAME_WEIGHT || this.expectedNamesakes(sharedName, vector.birthDate) <= NAMESAKE_RISK);
    const vetoes = autoLinkVetoes(vector, rareName);
    let outcome: MatchOutcome = 'no-match';
    if (score >= this.thresholds.autoLink && !vetoes.length) {
      outcome = 'auto-link';
    } else if (score >= this.thresholds.review && !contradicts(vector)) {
      outcome = 'review';
    }
    return { outcome, score, contributions, vetoes };
  }
}

/**
 * Evidence a household does not share: the same SSN or the same number under another person-level
 * identifier system. Twins share surname, birth date, address and phone; they never share these.
 */
function personalEvidence(v: ComparisonVector): boolean {
  return v.ssn === 'exact' || v.identifier === 'exact';
}

/** First name, surname and birth date all agree (exactly, or as a known form or one typing error of each other). */
function samePersonNamed(v: ComparisonVector): boolean {
  return (
    (v.firstName === 'exact' || v.firstName === 'nickname' || v.firstName === 'similar') &&
    (v.surname === 'exact' || v.surname === 'compound-part' || v.surname === 'similar') &&
    (v.birthDate === 'exact' || v.birthDate === 'transposed' || v.birthDate === 'one-digit')
  );
}

/**
 * Pairs not even worth a steward's time: a rule that is certain (Jr against Sr); or a first name that is
 * no form of the other with nothing personal to say it is one person: twins and household members share
 * surname, birth date (twins), address and phone, and that is all such a pair has. With an identifier or
 * e-mail agreeing or one keystroke apart, a replaced first name is a registration error to weigh: the
 * pair links (personalEvidence) or goes to review.
 */
function contradicts(v: ComparisonVector): boolean {
  if (v.suffix === 'different') return true;
  const somethingPersonal = personalEvidence(v) || v.ssn === 'one-edit' || v.identifier === 'one-edit' || v.email === 'shared';
  return v.firstName === 'different' && (!somethingPersonal || memberConflicts(v).length > 0);
}

/**
 * What makes two records of one enterprise identity impossible as one person: different SSNs or other
 * identifiers, Jr against Sr, different genders, unrelated birth dates. A record that auto-links to one
 * member of an identity but contradicts another member of it (linked there through a third record) is
 * not linked: the chain would merge two people. Empty when nothing contradicts.
 */
export function memberConflicts(v: ComparisonVector): string[] {
  const conflicts: string[] = [];
  if (v.ssn === 'different') conflicts.push('SSNs differ');
  // As for a pair on its own (autoLinkVetoes): a number that differs with everything naming the person
  // agreeing is a number mistyped or replaced, and a birth date that differs with an identifier agreeing
  // is a date mistyped. Neither is evidence of two people.
  if (v.identifier === 'different' && !samePersonNamed(v)) conflicts.push('identifiers of one system differ');
  if (v.suffix === 'different') conflicts.push('generational suffixes differ (Jr/Sr)');
  if (v.gender === 'different') conflicts.push('genders differ');
  if (v.birthDate === 'different' && !personalEvidence(v)) conflicts.push('birth dates differ');
  return conflicts;
}

/**
 * Evidence that forbids an automatic link however high the score: the independence the model assumes
 * fails exactly for twins (same surname, birth date, address and phone, different first names), fathers
 * and sons (Jr/Sr) and household members, where the shared fields add up to a high score. Such pairs go
 * to a data steward at most. Two different people merged is the worst failure of an HIE.
 * A personal identifier agreeing (personalEvidence) outweighs a name or birth date that disagrees: that
 * is how replaced first names, swapped or married surnames and mistyped dates look, and households do
 * not share identifiers.
 */
function autoLinkVetoes(v: ComparisonVector, rareName: boolean): string[] {
  const vetoes: string[] = [];
  const personal = personalEvidence(v);
  if (!personal && (v.firstName === 'different' || v.firstName === 'sound-alike' || v.firstName === 'initial')) {
    vetoes.push('first names differ');
  }
  if (!personal && (v.surname === 'different' || v.surname === 'sound-alike')) {
    vetoes.push('surnames differ');
  }
  if (!personal && (v.birthDate === 'different' || v.birthDate === 'year-only' || v.birthDate === 'missing')) {
    vetoes.push('birth dates differ or are missing');
  }
  // A number under another system that differs, with everything that names the person agreeing, is a number
  // mistyped or replaced at registration (FEBRL: most of its duplicates' differing ids), weighed by its
  // weight; with the person named differently, it forbids the link.
  if (v.ssn === 'different') {
    // The US SSN is validated and checked at registration: two of them differing stays a veto.
    vetoes.push('SSNs differ');
  }
  if (v.identifier === 'different' && !samePersonNamed(v)) {
    vetoes.push('identifiers of one system differ');
  }
  if (v.suffix === 'different') {
    vetoes.push('generational suffixes differ (Jr/Sr)');
  }
  if (v.gender === 'different') {
    vetoes.push('genders differ');
  }
  if (v.middleInitial === 'different') {
    vetoes.push('middle initials differ');
  }
  const corroborated =
    personal ||
    v.phone === 'shared' ||
    v.email === 'shared' ||
    v.ssn === 'one-edit' ||
    v.identifier === 'one-edit' ||
    v.postalCode === 'same' ||
    v.street === 'similar' ||
    v.middleInitial === 'same';
  if (!corroborated && !rareName) {
    // Two Michael Browns born the same day are not rare in a large population: name and birth date alone
    // are a question for a steward unless the index knows the name to be rare. In a community of common
    // names, 51 of 55 false links were exactly this, one side without a phone (issue 16).
    vetoes.push('only name and birth date agree');
  }
  return vetoes;
}
