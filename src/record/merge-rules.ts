import { createHash } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import { canonicalQuantity, SNOMED, standardCoding } from './code-maps.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type R = Resource & Record<string, any>;

/** The kinds of disagreement a merged fact is marked with (never resolved silently). */
export type ConflictKind = 'value' | 'problem-status' | 'medication-status' | 'allergy-status' | 'allergy-vs-no-known-allergies' | 'status';

/** One element two sources of the same fact must agree on; when they do not, the fact is marked. */
export interface ComparedElement {
  name: string;
  conflict: ConflictKind;
  /** The element's value as compared (undefined: the source does not say, which is no disagreement). */
  value(r: R): string | number | undefined;
  /** Equal within what rounding and unit conversion explain (default: strict equality). */
  same?(a: string | number, b: string | number): boolean;
}

/**
 * How source records of one resource type are judged to be the same fact. Two records are the same fact
 * when they come from different source records of the person, have the same `concept`, and either share
 * an identifier (`identity`) or lie within `toleranceMs` of each other in `time`. A record never merges
 * with another of its own source: a source that sends two readings has two readings.
 */
export interface MergeRule {
  type: string;
  /** What a data steward reads: the rule in words. */
  matchOn: string;
  /** The fact's concept keys (codings of its code, substance, organisation...); none: the record stands alone. */
  concept(r: R): string[];
  /** Identifiers that make two records the same fact whatever their times (order numbers, document ids). */
  identity?(r: R): string[];
  time?(r: R): number | undefined;
  toleranceMs?: number;
  /** Elements compared across the sources of one fact; a difference is a conflict. */
  compared: ComparedElement[];
  /**
   * The search parameters that find exactly the records holding a key (or more): `concept`, the token
   * parameter over the codings `concept` reads; `identity`, token parameters over every identifier
   * `identity` reads. A merged search lists with them only the records that could share a fact with its
   * matches (engine/operations/merged-closure.ts). Absent: no search finds those keys (an organisation's
   * identifier, a content hash), and a merged search merges the person's whole type.
   */
  keySearch?: { concept: string; identity?: string[] };
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const codings = (cc: any): { system: string; code: string }[] =>
  (cc?.coding ?? []).filter((c: any) => c?.system && c?.code).map((c: any) => standardCoding(c.system, c.code));

/**
 * A CodeableConcept's keys: each of its codings after the code maps (system|code), else its text. Two
 * records share a concept when they share a key, so a source that dropped a coding, or sent the code in
 * a system the maps translate, still meets the others.
 */
export function conceptKeys(cc: any): string[] {
  const all = codings(cc).map((c) => `${c.system}|${c.code}`);
  if (all.length) return [...new Set(all)];
  const text = typeof cc?.text === 'string' ? cc.text.trim().toLowerCase() : '';
  return text ? [`text|${text}`] : [];
}

const instant = (v: unknown): number | undefined => {
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
};
const firstTime = (...values: unknown[]): number | undefined => values.map(instant).find((t) => t !== undefined);
const identifiers = (ids: any): string[] => (Array.isArray(ids) ? ids : ids ? [ids] : []).filter((i: any) => i?.system && i?.value).map((i: any) => `${i.system}|${i.value}`);
const statusCode = (cc: any): string | undefined => cc?.coding?.[0]?.code ?? undefined;

/** Decimal places a number was written with: what rounding may have removed. */
const decimals = (n: number): number => (String(n).split('.')[1] ?? '').length;

/** Two numbers agree when rounding one to the other's precision, or a unit conversion (0.5 %), explains the difference. */
export function sameNumber(a: number, b: number): boolean {
  const d = Math.min(decimals(a), decimals(b));
  return Math.abs(a - b) <= 0.5 * 10 ** -d + 1e-9 || Math.abs(a - b) <= 0.005 * Math.max(Math.abs(a), Math.abs(b));
}

/** A result's value as compared: quantities in canonical units, codes as system|code, text lower case. */
function resultValue(r: any): string | number | undefined {
  const q = r.valueQuantity;
  if (typeof q?.value === 'number') {
    const c = canonicalQuantity(q.value, q.code ?? q.unit);
    return `${c.unit}:${c.value}`;
  }
  if (r.valueCodeableConcept) return conceptKeys(r.valueCodeableConcept).sort()[0];
  if (typeof r.valueString === 'string') return `s:${r.valueString.trim().toLowerCase()}`;
  if (Array.isArray(r.component)) {
    const parts = r.component.map((c: any) => `${conceptKeys(c.code).sort()[0]}=${c.valueQuantity ? canonicalQuantity(c.valueQuantity.value, c.valueQuantity.code ?? c.valueQuantity.unit).value : ''}`);
    return parts.length ? `components:${parts.sort().join(';')}` : undefined;
  }
  return undefined;
}

function sameResultValue(a: string | number, b: string | number): boolean {
  if (a === b) return true;
  const [sa, sb] = [String(a), String(b)];
  const quantity = /^([^:]*):(-?[\d.e+-]+)$/;
  const [qa, qb] = [quantity.exec(sa), quantity.exec(sb)];
  if (qa && qb) return qa[1] === qb[1] && sameNumber(Number(qa[2]), Number(qb[2]));
  if (sa.startsWith('components:') && sb.startsWith('components:')) {
    const parse = (s: string) => s.slice(11).split(';').map((p) => p.split('='));
    const [pa, pb] = [parse(sa), parse(sb)];
    return pa.length === pb.length && pa.every(([code, v], i) => code === pb[i][0] && (v === pb[i][1] || (v !== '' && pb[i][1] !== '' && sameNumber(Number(v), Number(pb[i][1])))));
  }
  return false;
}

const ACTIVE_MED = new Set(['active', 'on-hold', 'draft', 'intended']);
const medicationState = (r: any): string | undefined => (r.status ? (ACTIVE_MED.has(r.status) ? 'active' : r.status === 'entered-in-error' ? undefined : 'stopped') : undefined);

/** SNOMED CT "No known allergy" concepts: a record that says the person has none. */
export const NO_KNOWN_ALLERGY = new Set(['716186003', '409137002', '428607008', '429625007']);
/** SNOMED CT kinds of allergy (no substance): refuted, they say "no known (drug, food...) allergies", as C-CDA negates them. */
const ALLERGY_KINDS = new Set(['419199007', '416098002', '414285001', '420134006', '418038007', '235719002', '59037007', '419511003', '418471000', '232347008']);
const refuted = (r: any): boolean => r.verificationStatus?.coding?.[0]?.code === 'refuted';
export const isNoKnownAllergy = (r: any): boolean =>
  r.resourceType === 'AllergyIntolerance' && codings(r.code).some((c) => c.system === SNOMED && (NO_KNOWN_ALLERGY.has(c.code) || (ALLERGY_KINDS.has(c.code) && refuted(r))));
/** An allergy a source holds as current: active (or without a status) and not refuted. */
export const isActiveAllergy = (r: any): boolean => !isNoKnownAllergy(r) && !refuted(r) && (r.clinicalStatus?.coding?.[0]?.code ?? 'active') === 'active';

/** The rule table: one declarative rule per resource type (docs/record.md prints it). */
export const MERGE_RULES: readonly MergeRule[] = [
  {
    type: 'Observation',
    matchOn: 'code (LOINC, or the LOINC the code maps give) and effective time within 15 minutes; value and unit compared after unit conversion and rounding',
    concept: (r) => conceptKeys(r.code),
    time: (r) => firstTime(r.effectiveDateTime, r.effectivePeriod?.start, r.effectiveInstant, r.issued),
    toleranceMs: 15 * MINUTE,
    compared: [{ name: 'value', conflict: 'value', value: resultValue, same: sameResultValue }],
    keySearch: { concept: 'code' },
  },
  {
    type: 'Condition',
    matchOn: 'code (SNOMED CT, or the SNOMED CT an ICD-10-CM code maps to) and onset within 1 day; clinical status compared',
    concept: (r) => conceptKeys(r.code),
    time: (r) => firstTime(r.onsetDateTime, r.onsetPeriod?.start, r.recordedDate),
    toleranceMs: DAY,
    compared: [{ name: 'clinicalStatus', conflict: 'problem-status', value: (r) => ({ active: 'active', recurrence: 'active', relapse: 'active' })[statusCode(r.clinicalStatus) as string] ?? statusCode(r.clinicalStatus) }],
    keySearch: { concept: 'code' },
  },
  ...(['MedicationRequest', 'MedicationStatement'] as const).map(
    (type): MergeRule => ({
      type,
      matchOn: 'medication at ingredient + strength + dose form (the RxNorm clinical drug code) and date within 1 day; active vs stopped compared',
      concept: (r) => (r.medicationCodeableConcept ? conceptKeys(r.medicationCodeableConcept) : r.medicationReference?.display ? [`text|${String(r.medicationReference.display).toLowerCase()}`] : []),
      time: (r) => firstTime(r.authoredOn, r.effectiveDateTime, r.effectivePeriod?.start, r.dateAsserted),
      toleranceMs: DAY,
      compared: [{ name: 'status', conflict: 'medication-status', value: medicationState }],
      // `code` is medication.as(CodeableConcept); a key from medicationReference's display is text, which no search finds exactly.
      keySearch: { concept: 'code' },
    }),
  ),
  {
    type: 'AllergyIntolerance',
    matchOn: 'substance (code, SNOMED CT preferred); clinical and verification status compared; an active allergy beside a "no known allergies" record is a conflict',
    concept: (r) => [...conceptKeys(r.code), ...conceptKeys(r.reaction?.[0]?.substance)],
    compared: [
      { name: 'clinicalStatus', conflict: 'allergy-status', value: (r) => statusCode(r.clinicalStatus) },
      { name: 'verificationStatus', conflict: 'allergy-status', value: (r) => statusCode(r.verificationStatus) },
    ],
    // No keySearch: an allergy's conflicts depend on the person's other allergy facts ("no known allergies").
  },
  {
    type: 'Immunization',
    matchOn: 'vaccine code (CVX) and date within 1 day',
    concept: (r) => conceptKeys(r.vaccineCode),
    time: (r) => firstTime(r.occurrenceDateTime, r.recorded),
    toleranceMs: DAY,
    compared: [{ name: 'status', conflict: 'status', value: (r) => r.status }],
    keySearch: { concept: 'vaccine-code' },
  },
  {
    type: 'Encounter',
    matchOn: 'a shared identifier, or the same organisation (serviceProvider, by the Organization\'s identifier) and class with a start within 15 minutes',
    concept: (r) => [`${r.serviceProvider?.identifier ? `${r.serviceProvider.identifier.system}|${r.serviceProvider.identifier.value}` : (r.serviceProvider?.reference ?? r.serviceProvider?.display ?? '')}|${r.class?.code ?? ''}`],
    identity: (r) => identifiers(r.identifier),
    time: (r) => firstTime(r.period?.start, r.period?.end),
    toleranceMs: 15 * MINUTE,
    compared: [{ name: 'status', conflict: 'status', value: (r) => r.status }],
  },
  {
    type: 'Procedure',
    matchOn: 'code (SNOMED CT preferred) and performed date within 1 hour',
    concept: (r) => conceptKeys(r.code),
    time: (r) => firstTime(r.performedDateTime, r.performedPeriod?.start),
    toleranceMs: 60 * MINUTE,
    compared: [{ name: 'status', conflict: 'status', value: (r) => r.status }],
    keySearch: { concept: 'code' },
  },
  {
    type: 'DiagnosticReport',
    matchOn: 'the order it answers (basedOn / identifier), or code (LOINC) and effective time within 15 minutes',
    concept: (r) => conceptKeys(r.code),
    identity: (r) => [...identifiers(r.identifier), ...(r.basedOn ?? []).flatMap((b: any) => identifiers(b.identifier))],
    time: (r) => firstTime(r.effectiveDateTime, r.effectivePeriod?.start, r.issued),
    toleranceMs: 15 * MINUTE,
    compared: [{ name: 'status', conflict: 'status', value: (r) => r.status }],
    // No identity search: `based-on` is searched by reference, not by the order's identifier, so a report
    // with an identifier or an order identifier leaves its merged searches to the whole type.
    keySearch: { concept: 'code' },
  },
  {
    type: 'ServiceRequest',
    matchOn: 'a shared order identifier, or code and authored time within 15 minutes',
    concept: (r) => conceptKeys(r.code),
    identity: (r) => identifiers(r.identifier),
    time: (r) => firstTime(r.authoredOn, r.occurrenceDateTime),
    toleranceMs: 15 * MINUTE,
    compared: [{ name: 'status', conflict: 'status', value: (r) => r.status }],
    keySearch: { concept: 'code', identity: ['identifier'] },
  },
  {
    type: 'CarePlan',
    matchOn: 'category codes and period start within 15 minutes',
    concept: (r) => (r.category ?? []).flatMap(conceptKeys),
    time: (r) => firstTime(r.period?.start, r.created),
    toleranceMs: 15 * MINUTE,
    compared: [{ name: 'status', conflict: 'status', value: (r) => r.status }],
    keySearch: { concept: 'category' },
  },
  {
    type: 'DocumentReference',
    matchOn: 'masterIdentifier, or the hash of its first attachment',
    concept: (r) => [...(r.masterIdentifier?.value ? [`id|${r.masterIdentifier.system ?? ''}|${r.masterIdentifier.value}`] : []), ...(r.content ?? []).filter((c: any) => c.attachment?.hash).map((c: any) => `hash|${c.attachment.hash}`)],
    compared: [],
  },
];

/** Elements a record's own source writes that say nothing about the fact: ids, references, identifiers. */
const SOURCE_ONLY = new Set(['id', 'reference', 'fullUrl', 'identifier']);
/** At the top level also its meta and narrative. */
const SOURCE_ONLY_TOP = new Set([...SOURCE_ONLY, 'meta', 'text']);

/**
 * The fallback for types without a rule (claims, goals...): records with the same content apart from
 * ids, references, identifiers, meta and narrative are one fact.
 */
export function fallbackRule(type: string): MergeRule {
  const strip = (v: unknown, top = false): unknown =>
    Array.isArray(v)
      ? v.map((x) => strip(x))
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([k]) => !(top ? SOURCE_ONLY_TOP : SOURCE_ONLY).has(k))
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, strip(x)]),
          )
        : v;
  return {
    type,
    matchOn: 'identical content apart from ids, references, identifiers, meta and narrative',
    concept: (r) => [createHash('sha1').update(JSON.stringify(strip(r, true))).digest('hex')],
    compared: [],
  };
}

const byType = new Map(MERGE_RULES.map((r) => [r.type, r]));
export const ruleFor = (type: string): MergeRule => byType.get(type) ?? fallbackRule(type);
