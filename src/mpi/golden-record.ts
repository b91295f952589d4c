import type { Identifier, Patient } from '@medplum/fhirtypes';
import type { DerivedRecordKind } from '../search/derived-records.js';
import { ENTERPRISE_ID_SYSTEM, GOLDEN_TAG } from './source-identity.js';

/** Golden records stay out of participants' plain Patient searches; `_tag`, `_id` and `link` ask for them. */
export const GOLDEN_RECORDS: DerivedRecordKind = { resourceType: 'Patient', tag: GOLDEN_TAG, shownBy: new Set(['_tag', '_id', 'link']) };

/** Demographic elements the golden record takes whole from one source (survivorship per element). */
const SURVIVING_ELEMENTS = ['name', 'gender', 'birthDate', 'address', 'telecom', 'maritalStatus', 'communication', 'deceasedBoolean', 'deceasedDateTime'] as const;

/**
 * The enterprise (golden) Patient of a linked group. Survivorship: each element comes from the most
 * recently updated source record that has it (a participant trust ranking joins this rule when the
 * participant registry exists); identifiers are collected from every source, plus the enterprise id;
 * `link` lists every source record (`seealso`), so a client can go from the person to each source.
 */
export function goldenPatient(enterpriseId: string, sources: Patient[]): Patient {
  // Records their own source retired (active: false, e.g. merged away by an A40) come last, whatever their age.
  const retired = (p: Patient) => (p.active === false ? 1 : 0);
  const newestFirst = [...sources].sort((a, b) => retired(a) - retired(b) || (b.meta?.lastUpdated ?? '').localeCompare(a.meta?.lastUpdated ?? ''));
  const golden: Patient = {
    resourceType: 'Patient',
    id: enterpriseId,
    meta: { tag: [GOLDEN_TAG] },
    identifier: [{ system: ENTERPRISE_ID_SYSTEM, value: enterpriseId, use: 'official' }, ...collectIdentifiers(newestFirst)],
    active: true,
  };
  for (const element of SURVIVING_ELEMENTS) {
    const from = newestFirst.find((p) => p[element] !== undefined);
    if (from) {
      (golden as unknown as Record<string, unknown>)[element] = from[element];
    }
  }
  golden.link = [...sources].sort((a, b) => (a.id as string).localeCompare(b.id as string)).map((p) => ({ other: { reference: `Patient/${p.id}` }, type: 'seealso' }));
  return golden;
}

/** The source records a golden record links (its `seealso` links). */
export function linkedSourceIds(golden: Patient): string[] {
  return (golden.link ?? [])
    .filter((l) => l.type === 'seealso' && l.other.reference?.startsWith('Patient/'))
    .map((l) => (l.other.reference as string).slice('Patient/'.length));
}

/** The enterprise a merged-away golden record sends its holders on to (its `replaced-by` link), if any. */
export function replacedBy(golden: Patient): string | undefined {
  const ref = golden.link?.find((l) => l.type === 'replaced-by')?.other.reference;
  return ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : undefined;
}

/** What remains of an enterprise absorbed into another: an inactive golden record pointing to the survivor. */
export function replacedGoldenPatient(enterpriseId: string, survivorId: string): Patient {
  return {
    resourceType: 'Patient',
    id: enterpriseId,
    meta: { tag: [GOLDEN_TAG] },
    active: false,
    link: [{ other: { reference: `Patient/${survivorId}` }, type: 'replaced-by' }],
  };
}

function collectIdentifiers(sources: Patient[]): Identifier[] {
  const seen = new Set<string>();
  const out: Identifier[] = [];
  for (const identifier of sources.flatMap((p) => p.identifier ?? [])) {
    const key = `${identifier.system ?? ''}|${identifier.value ?? ''}`;
    if (identifier.value && !seen.has(key)) {
      seen.add(key);
      out.push(identifier);
    }
  }
  return out;
}
