import type { Patient } from '@medplum/fhirtypes';
import { nicknameVariants } from '../mpi/nicknames.js';
import { Random } from './random.js';

/**
 * A seeded population of people as several sources register them, with the truth of who is who: the
 * evaluation set of the master patient index (`npm run bench:mpi`). Each person has 1-4 records from up
 * to 5 sources, each record independently corrupted the ways registration data goes wrong (typos,
 * nicknames, day and month swapped, a digit of the birth date wrong, missing fields, an old address,
 * a compound surname shortened or joined, case, accents and punctuation, phone and SSN formats), and the
 * population holds the people an index must keep apart: twins, fathers and sons (Jr/Sr) at one address,
 * and common names sharing a birth year or date.
 */

export type Cohort = 'ordinary' | 'twin' | 'junior-senior' | 'common-name';

export interface GeneratedRecord {
  /** Who this record really is (ground truth; never part of the resource). */
  personId: number;
  cohort: Cohort;
  source: number;
  patient: Patient;
}

export interface PopulationOptions {
  seed: number;
  /** Number of people; records are about 2.0 per person. */
  persons: number;
  sources?: number;
}

interface Person {
  id: number;
  cohort: Cohort;
  given: string;
  middle?: string;
  family: string;
  suffix?: string;
  gender: 'male' | 'female';
  birthDate: string;
  ssn?: string;
  phone?: string;
  address: { line: string; city: string; state: string; postalCode: string };
  oldAddress: { line: string; city: string; state: string; postalCode: string };
}

const FEMALE = [
  'Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Sarah', 'Karen', 'Nancy', 'Margaret', 'Lisa', 'Betty', 'Dorothy',
  'Sandra', 'Ashley', 'Kimberly', 'Donna', 'Emily', 'Michelle', 'Carol', 'Amanda', 'Melissa', 'Deborah', 'Stephanie', 'Rebecca', 'Laura', 'Sharon', 'Cynthia',
  'Kathleen', 'Helen', 'Amy', 'Angela', 'Anna', 'Katherine', 'Christine', 'Samantha', 'Victoria', 'Abigail', 'Alexandra', 'Eleanor', 'Frances', 'Margarita',
  'Olivia', 'Emma', 'Sophia', 'Isabella', 'Mia', 'Amelia', 'Harper', 'Evelyn', 'Zoë', 'Chloé', 'Aaliyah', 'Mei', 'Priya', 'Fatima', 'Ngozi', 'Ingrid', 'Yuki',
];
const MALE = [
  'James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Charles', 'Christopher', 'Daniel', 'Matthew', 'Anthony', 'Mark',
  'Donald', 'Steven', 'Paul', 'Andrew', 'Joshua', 'Kenneth', 'Kevin', 'Brian', 'George', 'Timothy', 'Ronald', 'Edward', 'Jason', 'Jeffrey', 'Ryan', 'Jacob',
  'Gary', 'Nicholas', 'Eric', 'Jonathan', 'Stephen', 'Benjamin', 'Samuel', 'Alexander', 'Francis', 'Albert', 'Alfred', 'Peter', 'Henry', 'Walter',
  'Liam', 'Noah', 'Ethan', 'Mateo', 'Omar', 'Wei', 'Arjun', 'Kwame', 'José', 'Jürgen', 'Luis', 'Hiroshi', 'Dmitri', 'Tariq', 'Oluwaseun',
];
const COMMON_SURNAMES = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodríguez', 'Martinez', 'Hernández', 'López', 'Gonzalez', 'Wilson', 'Anderson',
  'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin', 'Lee', 'Pérez', 'Thompson', 'White', 'Harris', 'Sánchez', 'Clark', 'Ramírez', 'Lewis', 'Robinson', 'Walker',
  'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores', 'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell',
  'Carter', 'Roberts', "O'Brien", 'McDonald', 'Kim', 'Okafor', 'Müller', 'Patel', 'Cohen', 'Nowak', 'Kowalski', 'Rossi', 'Dubois', 'Yamamoto', 'Chen', 'Singh',
];
const SYLLABLES = {
  head: ['Al', 'Ber', 'Cal', 'Dor', 'El', 'Fen', 'Gar', 'Hal', 'Is', 'Jor', 'Kel', 'Lan', 'Mor', 'Nor', 'Os', 'Pel', 'Quin', 'Ros', 'Sal', 'Tor', 'Ul', 'Val', 'Wen', 'Yar', 'Zel'],
  mid: ['', 'a', 'e', 'i', 'o', 'an', 'en', 'in', 'or', 'er'],
  tail: ['son', 'berg', 'ton', 'ley', 'man', 'ford', 'ski', 'ez', 'ova', 'elli', 'ard', 'ick', 'well', 'wood', 'stein', 'sen', 'ian', 'ko', 'ada', 'quist'],
};
/** The names that make "common name, same birth date" happen at any scale. */
const VERY_COMMON = [
  ['John', 'Smith', 'male'], ['Maria', 'Garcia', 'female'], ['James', 'Johnson', 'male'], ['Mary', 'Williams', 'female'], ['Michael', 'Brown', 'male'],
  ['Jennifer', 'Jones', 'female'], ['David', 'Miller', 'male'], ['Linda', 'Davis', 'female'], ['Robert', 'Rodríguez', 'male'], ['Wei', 'Chen', 'male'],
] as const;

/**
 * Zipf-like picks, weight 1 / (rank + offset): a few names are common, most are rare, as in a real
 * population. The offset flattens the head to real shares: the commonest surname about 0.4 % of people
 * (Smith is about 0.8 % in the US), the commonest first name about 5 % of one gender.
 */
class Zipf<T> {
  private readonly cumulative: number[] = [];
  constructor(
    private readonly items: readonly T[],
    offset: number,
  ) {
    let sum = 0;
    for (let rank = 1; rank <= items.length; rank++) {
      sum += 1 / (rank + offset);
      this.cumulative.push(sum);
    }
  }
  pick(rnd: Random): T {
    const x = rnd.next() * this.cumulative[this.cumulative.length - 1];
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return this.items[lo];
  }
}

/**
 * Streets and towns: hundreds of each, so that two unrelated people rarely share an address by chance
 * (a handful would make every neighbour look like a match).
 */
const places = (() => {
  const rnd = new Random(1);
  const streetTypes = ['St', 'Ave', 'Rd', 'Ln', 'Dr', 'Ct', 'Way', 'Blvd', 'Pl'];
  const streets = SYLLABLES.head.flatMap((h) => SYLLABLES.mid.slice(0, 4).map((m) => `${h}${m}${rnd.pick(['wood', 'field', 'brook', 'hill', 'dale', 'view', 'ridge', 'crest'])} ${rnd.pick(streetTypes)}`));
  const states = ['MA', 'RI', 'NH', 'CT', 'VT', 'ME', 'NY'];
  const towns = SYLLABLES.head.flatMap((h) =>
    ['ton', 'ville', 'field', 'bury', 'ford', 'port', 'ham', 'wick', 'borough', 'mouth', 'stead', 'by'].map((t) => ({
      city: `${h}${t}`,
      state: rnd.pick(states),
      postalCode: String(rnd.int(1001, 99950)).padStart(5, '0'),
    })),
  );
  return { streets, towns };
})();

const surnames = new Zipf([...COMMON_SURNAMES, ...SYLLABLES.head.flatMap((h) => SYLLABLES.mid.flatMap((m) => SYLLABLES.tail.map((t) => `${h}${m}${t}`)))], 50);
const femaleNames = new Zipf(FEMALE, 10);
const maleNames = new Zipf(MALE, 10);

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

export function* identityPopulation(options: PopulationOptions): Generator<GeneratedRecord> {
  const rnd = new Random(options.seed);
  const sources = options.sources ?? 5;
  const mrnCounters = new Array<number>(sources).fill(0);
  let nextId = 0;
  const makePerson = (cohort: Cohort, base?: Partial<Person>): Person => {
    const gender = base?.gender ?? (rnd.chance(0.5) ? 'female' : 'male');
    const city = rnd.pick(places.towns);
    const old = rnd.pick(places.towns);
    return {
      id: nextId++,
      cohort,
      given: (gender === 'female' ? femaleNames : maleNames).pick(rnd),
      middle: rnd.chance(0.4) ? String.fromCharCode(65 + rnd.int(0, 25)) : undefined,
      family: surnames.pick(rnd),
      gender,
      birthDate: `${rnd.int(1930, 2020)}-${pad(rnd.int(1, 12))}-${pad(rnd.int(1, 28))}`,
      ssn: rnd.chance(0.7) ? `${rnd.int(100, 899)}${pad(rnd.int(1, 99))}${pad(rnd.int(1, 9999), 4)}` : undefined,
      phone: rnd.chance(0.85) ? `${rnd.int(201, 989)}${rnd.int(200, 999)}${pad(rnd.int(0, 9999), 4)}` : undefined,
      address: { line: `${rnd.int(1, 999)} ${rnd.pick(places.streets)}`, ...city },
      oldAddress: { line: `${rnd.int(1, 999)} ${rnd.pick(places.streets)}`, ...old },
      ...base,
    };
  };

  let made = 0;
  while (made < options.persons) {
    const roll = rnd.next();
    let people: Person[];
    if (roll < 0.02 && made + 2 <= options.persons) {
      // Twins: one household, one birth date, different first names (and SSNs).
      const first = makePerson('twin');
      const second = makePerson('twin', { family: first.family, birthDate: first.birthDate, address: first.address, oldAddress: first.oldAddress, phone: first.phone });
      // Parents do not give twins one first name (nor two forms of one).
      while (second.given === first.given || nicknameVariants(second.given.toLowerCase()).includes(first.given.toLowerCase())) {
        second.given = (second.gender === 'female' ? femaleNames : maleNames).pick(rnd);
      }
      people = [first, second];
    } else if (roll < 0.03 && made + 2 <= options.persons) {
      // Father and son: same name, household and phone, a generation apart, Sr and Jr (not always written).
      const father = makePerson('junior-senior', { gender: 'male' });
      const son = makePerson('junior-senior', {
        gender: 'male',
        given: father.given,
        family: father.family,
        address: father.address,
        oldAddress: father.oldAddress,
        phone: father.phone,
        birthDate: `${Number(father.birthDate.slice(0, 4)) + rnd.int(20, 40)}${father.birthDate.slice(4)}`,
      });
      father.suffix = 'Sr';
      son.suffix = 'Jr';
      people = [father, son];
    } else if (roll < 0.05) {
      // A very common name born in one decade: at scale, many share a birth year and some a birth date.
      const [given, family, gender] = rnd.pick(VERY_COMMON);
      people = [makePerson('common-name', { given, family, gender, birthDate: `${rnd.int(1970, 1979)}-${pad(rnd.int(1, 12))}-${pad(rnd.int(1, 28))}` })];
    } else {
      people = [makePerson('ordinary')];
    }
    for (const person of people) {
      made++;
      const count = rnd.pick([1, 1, 1, 1, 2, 2, 2, 3, 3, 4]);
      const used = new Set<number>();
      for (let r = 0; r < count && used.size < sources; r++) {
        let source = rnd.int(0, sources - 1);
        while (used.has(source)) source = (source + 1) % sources;
        used.add(source);
        const mrn = `S${source}-${++mrnCounters[source]}`;
        yield { personId: person.id, cohort: person.cohort, source, patient: registration(rnd, person, source, mrn) };
      }
    }
  }
}

/** One source's record of a person, with that source's errors and habits. */
function registration(rnd: Random, p: Person, source: number, mrn: string): Patient {
  let given = p.given;
  let family = p.family;
  let birthDate = p.birthDate;
  if (rnd.chance(0.08)) {
    const variants = nicknameVariants(given.toLowerCase());
    if (variants.length) {
      given = capitalise(rnd.pick(variants));
    }
  }
  if (rnd.chance(0.05)) given = typo(rnd, given);
  if (rnd.chance(0.05)) family = typo(rnd, family);
  if (rnd.chance(0.03)) {
    // Compound surnames: a married name joined with a hyphen or a space, or the second part dropped.
    family = family.includes('-') ? family.split('-')[0] : `${family}${rnd.pick(['-', ' '])}${surnames.pick(rnd)}`;
  }
  const [y, m, d] = birthDate.split('-');
  if (rnd.chance(0.02) && Number(d) <= 12) birthDate = `${y}-${d}-${m}`;
  else if (rnd.chance(0.02)) birthDate = `${y}-${m}-${pad(Math.min(28, Math.max(1, Number(d) + rnd.pick([-1, 1, 10, -10]))))}`;
  if (rnd.chance(0.1)) {
    // Formatting habits: all capitals, accents dropped.
    given = given.toUpperCase();
    family = family.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toUpperCase();
  }
  const address = rnd.chance(0.15) ? p.oldAddress : p.address;
  const patient: Patient = {
    resourceType: 'Patient',
    identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: `urn:example:source-${source}:mrn`, value: mrn }],
    name: [{ family, given: p.middle && rnd.chance(0.6) ? [given, p.middle] : [given], ...(p.suffix && rnd.chance(0.7) ? { suffix: [p.suffix] } : {}) }],
    gender: p.gender,
    birthDate,
  };
  if (p.ssn && rnd.chance(0.6)) {
    const ssn = rnd.chance(0.5) ? `${p.ssn.slice(0, 3)}-${p.ssn.slice(3, 5)}-${p.ssn.slice(5)}` : p.ssn;
    patient.identifier?.push({ system: 'http://hl7.org/fhir/sid/us-ssn', value: ssn });
  }
  if (p.phone && rnd.chance(0.8)) {
    const [a, b, c] = [p.phone.slice(0, 3), p.phone.slice(3, 6), p.phone.slice(6)];
    patient.telecom = [{ system: 'phone', value: rnd.pick([`(${a}) ${b}-${c}`, `${a}-${b}-${c}`, `${a}${b}${c}`, `+1 ${a} ${b} ${c}`]) }];
  }
  if (rnd.chance(0.9)) {
    patient.address = [{ line: [address.line], city: address.city, state: address.state, postalCode: address.postalCode }];
  }
  return patient;
}

function capitalise(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** One keyboard slip: a letter dropped, doubled, swapped with its neighbour, or replaced. */
function typo(rnd: Random, word: string): string {
  if (word.length < 4) {
    return word;
  }
  const i = rnd.int(1, word.length - 2);
  switch (rnd.int(0, 3)) {
    case 0:
      return word.slice(0, i) + word.slice(i + 1);
    case 1:
      return word.slice(0, i) + word[i] + word.slice(i);
    case 2:
      return word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2);
    default:
      return word.slice(0, i) + String.fromCharCode(97 + rnd.int(0, 25)) + word.slice(i + 1);
  }
}
