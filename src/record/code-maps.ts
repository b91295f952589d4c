/**
 * The code maps the merged record ships: codes a source may send in another system, mapped to the
 * standard coding the merge rules compare (LOINC for results, SNOMED CT for problems, RxNorm for
 * medications). Data, not logic: a steward extends these tables; a code without a mapping is compared
 * as it was sent (its own system|code), so an unmapped local code never merges with a standard one.
 */

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';
export const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const CVX = 'http://hl7.org/fhir/sid/cvx';

/** A source system's code and the standard code it stands for. */
export interface CodeMapping {
  from: { system: string; code: string };
  to: { system: string; code: string };
  /** Why the codes are equivalent (what a steward reviewing the map reads). */
  note: string;
}

/** Local laboratory codes of the participants' systems (as their HL7 OBX-3 sends them) to LOINC. */
const LOCAL_LAB = 'urn:tessera:local-lab-codes';
const labCodes: [string, string, string][] = [
  ['GLU', '2339-0', 'Glucose, blood'],
  ['HBA1C', '4548-4', 'Hemoglobin A1c/Hemoglobin.total in Blood'],
  ['CHOL', '2093-3', 'Cholesterol, total'],
  ['TRIG', '2571-8', 'Triglycerides'],
  ['LDL', '18262-6', 'LDL cholesterol (direct)'],
  ['HDL', '2085-9', 'HDL cholesterol'],
  ['NA', '2947-0', 'Sodium'],
  ['K', '6298-4', 'Potassium'],
  ['CL', '2069-3', 'Chloride'],
  ['CO2', '20565-8', 'Carbon dioxide'],
  ['BUN', '6299-2', 'Urea nitrogen'],
  ['CREAT', '38483-4', 'Creatinine'],
  ['CA', '49765-1', 'Calcium'],
  ['HGB', '718-7', 'Hemoglobin'],
  ['HCT', '4544-3', 'Hematocrit'],
  ['PLT', '777-3', 'Platelets'],
  ['WBC', '6690-2', 'Leukocytes'],
  ['WT', '29463-7', 'Body weight'],
  ['HT', '8302-2', 'Body height'],
  ['BMI', '39156-5', 'Body mass index'],
  ['BP', '55284-4', 'Blood pressure panel'],
  ['TEMP', '8331-1', 'Oral temperature'],
];

/** ICD-10-CM problem codes to the SNOMED CT concept they are equivalent to (one-to-one cases only). */
const icdToSnomed: [string, string, string][] = [
  ['J01.90', '444814009', 'Acute (viral) sinusitis'],
  ['J02.9', '195662009', 'Acute (viral) pharyngitis'],
  ['J20.9', '10509002', 'Acute bronchitis'],
  ['E66.9', '162864005', 'Obesity, BMI 30+'],
  ['R73.03', '15777000', 'Prediabetes'],
  ['H66.90', '65363002', 'Otitis media'],
  ['D64.9', '271737000', 'Anemia'],
  ['I10', '38341003', 'Essential hypertension'],
  ['J32.9', '40055000', 'Chronic sinusitis'],
  ['K63.5', '68496003', 'Polyp of colon'],
  ['K37', '74400008', 'Appendicitis'],
  ['E78.5', '55822004', 'Hyperlipidemia'],
  ['J02.0', '43878008', 'Streptococcal pharyngitis'],
  ['I50.9', '88805009', 'Heart failure'],
  ['E11.9', '44054006', 'Type 2 diabetes mellitus'],
  ['J45.909', '195967001', 'Asthma'],
];

export const CODE_MAPPINGS: readonly CodeMapping[] = [
  ...labCodes.map(([local, loinc, note]) => ({ from: { system: LOCAL_LAB, code: local }, to: { system: LOINC, code: loinc }, note })),
  ...icdToSnomed.map(([icd, sct, note]) => ({ from: { system: ICD10CM, code: icd }, to: { system: SNOMED, code: sct }, note })),
];

export const LOCAL_LAB_SYSTEM = LOCAL_LAB;

const bySource = new Map(CODE_MAPPINGS.map((m) => [`${m.from.system}|${m.from.code}`, m.to]));
const byTarget = new Map(CODE_MAPPINGS.map((m) => [`${m.to.system}|${m.to.code}`, m.from]));

/** The standard coding a source coding stands for (itself when it is standard or unmapped). */
export function standardCoding(system: string, code: string): { system: string; code: string } {
  return bySource.get(`${system}|${code}`) ?? { system, code };
}

/**
 * Every coding that stands for the same concept as `system|code` after the maps: its standard coding and
 * each source coding mapped to that (for searches over the merged view, whose facts carry all of them).
 */
export function equivalentCodings(system: string, code: string): { system: string; code: string }[] {
  const standard = standardCoding(system, code);
  const key = `${standard.system}|${standard.code}`;
  return [standard, ...CODE_MAPPINGS.filter((m) => `${m.to.system}|${m.to.code}` === key).map((m) => m.from)];
}

/** A source coding for a standard one, if the maps have one (to write perturbed test data and narratives). */
export function sourceCodingFor(system: string, code: string): { system: string; code: string } | undefined {
  return byTarget.get(`${system}|${code}`);
}

/**
 * UCUM units converted to one unit per dimension before values are compared: [unit, factor, offset]
 * such that canonical = value * factor + offset.
 */
const UNIT_CONVERSIONS: Record<string, [string, number, number]> = {
  kg: ['kg', 1, 0],
  g: ['kg', 0.001, 0],
  '[lb_av]': ['kg', 0.45359237, 0],
  cm: ['cm', 1, 0],
  m: ['cm', 100, 0],
  '[in_i]': ['cm', 2.54, 0],
  Cel: ['Cel', 1, 0],
  '[degF]': ['Cel', 5 / 9, (-32 * 5) / 9],
  'g/dL': ['g/L', 10, 0],
  'g/L': ['g/L', 1, 0],
  'mg/dL': ['mg/L', 10, 0],
  'mg/L': ['mg/L', 1, 0],
};

/** A quantity in its dimension's canonical unit; unknown units stay as they are. */
export function canonicalQuantity(value: number, unit: string | undefined): { value: number; unit: string } {
  const conversion = unit ? UNIT_CONVERSIONS[unit] : undefined;
  return conversion ? { value: value * conversion[1] + conversion[2], unit: conversion[0] } : { value, unit: unit ?? '' };
}

/** A quantity converted from one UCUM unit to another of the same dimension (for test data), or undefined. */
export function convertQuantity(value: number, from: string, to: string): number | undefined {
  const [a, b] = [UNIT_CONVERSIONS[from], UNIT_CONVERSIONS[to]];
  if (!a || !b || a[0] !== b[0]) return undefined;
  return (value * a[1] + a[2] - b[2]) / b[1];
}
