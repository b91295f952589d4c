import { DEFAULT_ROLE_PURPOSES } from '../../src/auth/purpose-of-use.js';
import type { Consent, ConsentProvision, Resource } from '@medplum/fhirtypes';
import type { Random } from '../../src/synthetic/random.js';
import { privacyConsent } from './governance.js';

/**
 * The leak test's community and its oracle (test/leak.test.ts): what the generator wrote, the callers it
 * planned, and the access policy evaluated from those alone, independently of src/ (no Consent resources,
 * labels or tokens are read back to decide). Everything here is synthetic, drawn from a seeded Random: names
 * and codes from a small vocabulary (LOINC vital signs and labs, an HIV viral load, ICD-10-CM opioid
 * dependence, SNOMED depression and diabetes).
 */
export const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
export const TYPES = ['Patient', 'Observation', 'Condition', 'Encounter', 'Practitioner'] as const;
export type Kind = 'HIV' | 'ETH' | 'PSY';
const KINDS: Kind[] = ['HIV', 'ETH', 'PSY'];
export const PURPOSES = [undefined, 'TREAT', 'ETREAT', 'HPAYMT'] as const;
const VITAL_SIGNS = 'http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';
const LABORATORY = 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory';

/** What the generator knows about each resource: the oracle decides from this alone. */
export interface Fact {
  type: string;
  id: string;
  patient?: string;
  category?: 'vital-signs' | 'laboratory';
  kinds: Kind[];
  veryRestricted: boolean;
  resource: Resource;
}

/** A consent rule as the generator meant it. */
export interface Rule {
  effect: 'permit' | 'deny';
  /** The rule is for this actor only (an Organization, or a user's Practitioner). */
  actor?: string;
  /** A deny for everyone but this actor. */
  exceptActor?: string;
  kind?: Kind;
  exceptPurpose?: string;
}

/**
 * A caller as planned: a backend client (a participant's, with its Organization, or one of no participant),
 * a staff user (clinician or steward) at an Organization, or a patient using their own app.
 */
export interface CallerPlan {
  index: number;
  kind: 'participant' | 'client' | 'clinician' | 'steward' | 'patient';
  /** The resource scopes asked for (the token's must be exactly these). */
  scope: string;
  organization?: string;
  /** The launch context: a staff user's chosen patient (`launch/patient`), a patient user's own record. */
  patient?: string;
  purpose?: string;
  clearance: string[];
  /** A staff user declares break-the-glass for this patient. */
  breakGlass?: string;
}

/** A scope as this test reads it (its own parser: the oracle does not use src/security/scopes.ts). */
export interface OracleScope {
  context: 'system' | 'user' | 'patient';
  type: string;
  interactions: string;
  /** `system|code` of a granular `?category=` restriction. */
  category?: string;
}

export function oracleScopes(text: string): OracleScope[] {
  return text
    .split(/\s+/)
    .map((s) => /^(system|user|patient)\/(\*|[A-Z][A-Za-z]+)\.([cruds]+)(?:\?category=(.+))?$/.exec(s))
    .filter((m): m is RegExpExecArray => !!m)
    .map(([, context, type, interactions, category]) => ({ context: context as OracleScope['context'], type, interactions, category }));
}

/** Who asks, in the oracle's terms: what the caller was planned to be and what it did (break-the-glass). */
export interface OracleCaller {
  name: string;
  scopes: OracleScope[];
  patient?: string;
  organization?: string;
  /** The user's FHIR resource (`Practitioner/..` or `Patient/..`). */
  fhirUser?: string;
  purpose?: string;
  clearance: string[];
  btgPatient?: string;
  /** A patient signed in to their own record: their consent and labels do not withhold it from them. */
  ownRecord?: boolean;
}

export const key = (r: Resource | Fact) => ('resourceType' in r ? `${r.resourceType}/${r.id}` : `${r.type}/${r.id}`);

function scopeGrants(caller: OracleCaller, f: Fact, interaction: 'r' | 's'): boolean {
  return caller.scopes.some((s) => {
    if (!(s.type === '*' || s.type === f.type) || !s.interactions.includes(interaction)) return false;
    if (s.context === 'patient') {
      if (!caller.patient) return false;
      // Types outside the Patient compartment (Practitioner, Organization) hold nobody's data.
      if (f.patient !== undefined && f.patient !== caller.patient) return false;
    }
    if (s.category && !(f.category && s.category.endsWith(`|${f.category}`))) return false;
    return true;
  });
}

function applies(rule: Rule, caller: OracleCaller): boolean {
  const actors = [caller.organization, caller.fhirUser].filter(Boolean);
  if (rule.actor && !actors.includes(rule.actor)) return false;
  if (rule.exceptActor && actors.includes(rule.exceptActor)) return false;
  if (rule.exceptPurpose && rule.exceptPurpose === caller.purpose) return false;
  return true;
}

/** The policy, evaluated independently of src/: scopes, patient context, consent, labels, clearance, BTG. */
export function allowed(caller: OracleCaller, f: Fact, interaction: 'r' | 's', consents: Map<string, Rule[]>): boolean {
  if (!scopeGrants(caller, f, interaction)) return false;
  if (!f.patient || caller.btgPatient === f.patient || (caller.ownRecord && caller.patient === f.patient)) return true;
  const rules = (consents.get(f.patient) ?? []).filter((r) => applies(r, caller));
  if (rules.some((r) => r.effect === 'deny' && (!r.kind || f.kinds.includes(r.kind)))) return false;
  const cleared = (k: string) => caller.clearance.includes(k) || caller.clearance.includes('*');
  for (const kind of f.kinds) {
    if (!cleared(kind) && !rules.some((r) => r.effect === 'permit' && r.kind === kind)) return false;
  }
  return !f.veryRestricted || cleared('V');
}

/** Whether the scopes reach this resource at all (consent and labels apart): break-the-glass needs it. */
export function inScopeReach(caller: OracleCaller, f: Fact, interaction: 'r' | 's'): boolean {
  return scopeGrants(caller, f, interaction);
}

/** Whether the scopes allow the interaction on the type at all (else 403). */
export function typeAllowed(caller: OracleCaller, type: string, interaction: 'r' | 's'): boolean {
  return caller.scopes.some((sc) => (sc.type === '*' || sc.type === type) && sc.interactions.includes(interaction) && (sc.context !== 'patient' || !!caller.patient));
}

export function consentResource(patient: string, rule: Rule): Consent {
  const provision: ConsentProvision =
    rule.effect === 'deny' && rule.exceptPurpose
      ? { type: 'deny', provision: [{ type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: rule.exceptPurpose }] }] }
      : rule.effect === 'deny' && rule.exceptActor
        ? { type: 'deny', provision: [{ type: 'permit', actor: [{ role: { text: 'recipient' }, reference: { reference: rule.exceptActor } }] }] }
        : {
            type: rule.effect,
            actor: rule.actor ? [{ role: { text: 'recipient' }, reference: { reference: rule.actor } }] : undefined,
            securityLabel: rule.kind ? [{ system: ACT, code: rule.kind }] : undefined,
          };
  return { ...privacyConsent(patient, provision), dateTime: undefined };
}

/**
 * Writes the clinical data through `post` (Practitioners, Patients with an Encounter, Observations and
 * Conditions, some labelled sensitive or very restricted) and remembers each resource's facts.
 */
export async function writeClinicalData(random: Random, post: (r: Resource) => Promise<Resource>, remember: (r: Resource, f: Omit<Fact, 'type' | 'id' | 'resource'>) => void): Promise<{ patients: string[]; practitioners: string[] }> {
  const practitioners: string[] = [];
  for (const family of ['Osler', 'Apgar']) {
    const r = await post({ resourceType: 'Practitioner', name: [{ family }] });
    remember(r, { kinds: [], veryRestricted: false });
    practitioners.push(r.id as string);
  }
  const patients: string[] = [];
  // Each kind of sensitive data, and very restricted data, at least once: the last patient gets what the draws left out.
  const seen = new Set<string>();
  const families = ['Quist', 'Ruelas', 'Sandoval', 'Tremblay', 'Umeh', 'Vance', 'Wexler', 'Yilmaz'];
  for (const [i, family] of families.entries()) {
    // Distinct names and birth dates: no two records are one person to the patient index.
    const p = await post({ resourceType: 'Patient', name: [{ family, given: [`G${i}`] }], birthDate: `19${50 + i * 5}-0${1 + (i % 9)}-1${i}`, gender: i % 2 ? 'male' : 'female' });
    remember(p, { patient: p.id, kinds: [], veryRestricted: false });
    patients.push(p.id as string);
    const subject = { reference: `Patient/${p.id}` };
    const enc = await post({ resourceType: 'Encounter', status: 'finished', class: { system: ACT, code: 'AMB' }, subject });
    remember(enc, { patient: p.id, kinds: [], veryRestricted: false });
    const observation = async (category: 'vital-signs' | 'laboratory', code: string, kinds: Kind[], veryRestricted = false) => {
      const r = await post({
        resourceType: 'Observation',
        status: 'final',
        meta: veryRestricted ? { security: [{ system: CONF, code: 'V' }] } : undefined,
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
        code: { coding: [{ system: 'http://loinc.org', code }] },
        subject,
        encounter: { reference: `Encounter/${enc.id}` },
        performer: [{ reference: `Practitioner/${random.pick(practitioners)}` }],
        valueQuantity: { value: random.int(1, 200) },
      } as Resource);
      remember(r, { patient: p.id, category, kinds, veryRestricted });
      [...kinds, ...(veryRestricted ? ['V'] : [])].forEach((k) => seen.add(k));
    };
    const last = i === families.length - 1;
    const draw = (p: number, kind: string) => random.chance(p) || (last && !seen.has(kind));
    await observation('vital-signs', '8867-4', []);
    await observation('laboratory', '4548-4', []);
    if (draw(0.5, 'HIV')) await observation('laboratory', '20447-9', ['HIV']);
    if (draw(0.25, 'V')) await observation('laboratory', '2345-7', [], true);
    const condition = async (system: string, code: string, kinds: Kind[]) => {
      const r = await post({ resourceType: 'Condition', code: { coding: [{ system, code }] }, subject } as Resource);
      remember(r, { patient: p.id, kinds, veryRestricted: false });
      kinds.forEach((k) => seen.add(k));
    };
    await condition('http://snomed.info/sct', '44054006', []);
    if (draw(0.4, 'ETH')) await condition('http://hl7.org/fhir/sid/icd-10-cm', 'F11.20', ['ETH']);
    if (draw(0.4, 'PSY')) await condition('http://snomed.info/sct', '35489007', ['PSY']);
  }
  return { patients, practitioners };
}

const BACKEND_SCOPES = [
  'system/*.rs',
  'system/Patient.rs system/Observation.rs',
  `system/Observation.rs?category=${VITAL_SIGNS} system/Patient.rs`,
  'system/Condition.rs system/Encounter.rs',
  'system/Patient.s system/Observation.rs',
  // Patient scopes without a patient context: a backend token that reaches nothing.
  'patient/*.rs',
  `system/Practitioner.rs system/Observation.rs?category=${LABORATORY}`,
];
const STAFF_SCOPES = [
  'user/*.rs',
  'user/*.rs',
  'user/Patient.rs user/Observation.rs',
  `user/Observation.rs?category=${VITAL_SIGNS} user/Patient.rs`,
  'user/Condition.rs user/Encounter.rs',
  'user/Patient.s user/Observation.rs',
  'patient/*.rs',
  'patient/Observation.rs patient/Patient.rs',
  `user/Practitioner.rs user/Observation.rs?category=${LABORATORY}`,
];
const PATIENT_SCOPES = ['patient/*.rs', 'patient/Observation.rs patient/Patient.rs'];
const CLEARANCES = [[], [], ['HIV'], ['ETH', 'PSY'], ['V'], ['*']];

/** Draws from `items` like cards from a shuffled deck, reshuffled when empty: every item comes up before any twice. */
function dealer<T>(random: Random, items: readonly T[]): () => T {
  let deck: T[] = [];
  return () => {
    if (!deck.length) {
      deck = [...items];
      for (let i = deck.length - 1; i > 0; i--) {
        const j = random.int(0, i);
        [deck[i], deck[j]] = [deck[j], deck[i]];
      }
    }
    return deck.pop() as T;
  };
}

/** A user declares only a purpose of their role (src/auth/purpose-of-use.ts): another dealt one becomes the role's first. */
function purposeFor(kind: CallerPlan['kind'], dealt: string | undefined): string | undefined {
  const allowed = kind === 'clinician' || kind === 'steward' || kind === 'patient' ? DEFAULT_ROLE_PURPOSES[kind] : undefined;
  return !dealt || !allowed || allowed.includes(dealt) ? dealt : allowed[0];
}

/**
 * Plans `n` callers: the first one per Organization is that participant's own client; the others are
 * clients of no participant, staff users (mostly clinicians) at a random Organization, or patients
 * (at most two, each with their own record), with random scopes, purposes, clearances and break-the-glass
 * (scopes, purposes and clearances dealt so that each comes up). The first participant's client reads
 * everything its scopes allow, cleared for all kinds of sensitive data, as an exchange's own might.
 */
export function planCallers(random: Random, n: number, organizations: string[], patients: string[]): CallerPlan[] {
  const plans: CallerPlan[] = [];
  const patientUsers = new Set<string>();
  const scopes = { backend: dealer(random, BACKEND_SCOPES), staff: dealer(random, STAFF_SCOPES), patient: dealer(random, PATIENT_SCOPES) };
  const purposes = dealer(random, PURPOSES);
  const clearances = dealer(random, CLEARANCES);
  for (let index = 0; index < n; index++) {
    let kind: CallerPlan['kind'] = index < organizations.length ? 'participant' : random.pick(['client', 'client', 'clinician', 'clinician', 'clinician', 'steward', 'patient'] as const);
    if (kind === 'patient' && patientUsers.size >= 2) kind = 'clinician';
    const staff = kind === 'clinician' || kind === 'steward';
    const scope = index === 0 ? 'system/*.rs' : kind === 'patient' ? scopes.patient() : staff ? scopes.staff() : scopes.backend();
    let patient: string | undefined;
    if (kind === 'patient') {
      patient = random.pick(patients.filter((p) => !patientUsers.has(p)));
      patientUsers.add(patient);
    } else if (staff && scope.startsWith('patient/')) {
      patient = random.pick(patients);
    }
    plans.push({
      index,
      kind,
      scope,
      organization: kind === 'participant' ? organizations[index] : kind === 'client' ? undefined : random.pick(organizations),
      patient,
      purpose: purposeFor(kind, purposes()),
      clearance: index === 0 ? ['*'] : clearances(),
      breakGlass: staff && random.chance(0.4) ? random.pick(patients) : undefined,
    });
  }
  return plans;
}

/**
 * Consents: each patient gets none, one or two of the forms the issue names: deny an actor (an
 * Organization or a user), deny a kind of data, deny except for a purpose or an actor, permit a kind to an
 * actor or to all.
 */
export function planConsents(random: Random, patients: string[], organizations: string[], staffUsers: string[]): Map<string, Rule[]> {
  const consents = new Map<string, Rule[]>(patients.map((p) => [p, []]));
  const actors = () => (staffUsers.length && random.chance(0.3) ? random.pick(staffUsers) : random.pick(organizations));
  const rule = (form: number): Rule =>
    form === 0 ? { effect: 'deny', actor: actors() }
    : form === 1 ? { effect: 'deny', kind: random.pick(KINDS) }
    : form === 2 ? { effect: 'deny', exceptPurpose: 'TREAT' }
    : form === 3 ? { effect: 'permit', actor: random.pick(organizations), kind: random.pick(KINDS) }
    : form === 4 ? { effect: 'permit', kind: random.pick(KINDS) }
    : { effect: 'deny', exceptActor: random.pick(organizations) };
  const used = new Set<number>();
  for (const patient of patients) {
    for (let n = random.int(0, 2); n > 0; n--) {
      const form = random.int(0, 5);
      used.add(form);
      consents.get(patient)?.push(rule(form));
    }
  }
  // Every form at least once: a form the draws left out goes to a random patient.
  for (let form = 0; form <= 5; form++) if (!used.has(form)) consents.get(random.pick(patients))?.push(rule(form));
  return consents;
}
