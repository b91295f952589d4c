import { Random } from '../src/synthetic/random.js';

const FAMILIES = ['Okafor', 'Lindqvist', 'Moreau', 'Tanaka', 'Brennan', 'Haddad', 'Novak', 'Castillo'];
const GIVEN = ['Ada', 'Bram', 'Cleo', 'Dev', 'Esme', 'Farid', 'Greta', 'Hugo'];

/** The i-th generated message: even i an admission, odd i a lab result for the same person. */
export function message(i: number, run: string): string {
  const rnd = new Random(i);
  const person = Math.floor(i / 2);
  const mrn = `${run}-${person}`;
  const pid = `PID|1||${mrn}^^^BENCHGEN^MR||${rnd.pick(FAMILIES)}${person}^${rnd.pick(GIVEN)}||19${rnd.int(40, 99)}0${rnd.int(1, 9)}1${rnd.int(0, 9)}|${rnd.pick(['M', 'F'])}|||${rnd.int(1, 999)} Elm St^^Springfield^MA^0${rnd.int(1000, 2799)}`;
  const control = `${run}-${i}`;
  if (i % 2 === 0) {
    return [
      `MSH|^~\\&|ADT|BENCHGEN|HIE|TESSERA|20261125120000||ADT^A01^ADT_A01|${control}|P|2.5.1`,
      'EVN|A01|20261125120000',
      pid,
      `PV1|1|I|W${rnd.int(1, 9)}^${rnd.int(100, 499)}^A||||1234^Doe^Jan|||MED||||||||V${mrn}|||||||||||||||||||||||||20261125115500`,
      `DG1|1||I10^Essential hypertension^I10|||A`,
    ].join('\r');
  }
  const obx = Array.from({ length: 5 }, (_, k) => `OBX|${k + 1}|NM|${['2345-7^Glucose', '2160-0^Creatinine', '2951-2^Sodium', '2823-3^Potassium', '718-7^Hemoglobin'][k]}^LN||${rnd.int(1, 200)}|${['mg/dL', 'mg/dL', 'mmol/L', 'mmol/L', 'g/dL'][k]}|1-200|N|||F|||20261125110000`);
  return [`MSH|^~\\&|LAB|BENCHGEN|HIE|TESSERA|20261125120500||ORU^R01^ORU_R01|${control}|P|2.5.1`, pid, `OBR|1||F-${control}|24323-8^Metabolic panel^LN|||20261125110000||||||||||||||||||F`, ...obx].join('\r');
}

/** Newborn-screening panels (LOINC) and the lab's own codes for them, as a state laboratory's feed sends them. */
const NBS_PANELS = ['57128-1', '57717-1', '58088-6', '57085-3', '57086-1', '54078-1', '57087-9', '54076-5', '54090-6', '57084-6', '54077-3', '57700-7', '57721-3'];

/**
 * The i-th newborn-screening-style ORU^R01 (the shape of test/hl7v2-result-identity.test.ts): one order
 * number across 13 OBRs, each with its own panel code, an analyte and an interpretation; a new baby and
 * order per message. `local`: every test and panel code in the lab's own `L` system instead of LOINC.
 */
export function newbornScreeningMessage(i: number, run: string, facility: string, codes: 'loinc' | 'local'): string {
  const rnd = new Random(i);
  const order = `NBS-${run}-${i}`;
  const code = (loinc: string, text: string) => (codes === 'loinc' ? `${loinc}^${text}^LN` : `NB${loinc.replace('-', '')}^${text}^L`);
  const lines = [
    `MSH|^~\\&|NBSLIMS|${facility}|HIE|TESSERA|20261203120000-0500||ORU^R01^ORU_R01|${run}-${i}|P|2.5.1`,
    `PID|1||NB-${run}-${i}^^^${facility}^MR||${rnd.pick(FAMILIES)}^Baby ${rnd.pick(['Girl', 'Boy'])}^^^^^L|${rnd.pick(GIVEN)}|2026110${rnd.int(1, 9)}1504-0500|${rnd.pick(['M', 'F'])}`,
    `ORC|RE|ORD-${run}-${i}|${order}^${facility}`,
  ];
  NBS_PANELS.forEach((panel, k) => {
    lines.push(
      `OBR|${k + 1}|ORD-${run}-${i}|${order}^${facility}|${code(panel, `Newborn screening panel ${k + 1}`)}|||20261202080000-0500|||||||||||||||20261203115900-0500|||F`,
      `OBX|1|NM|${code(`${53000 + k}-1`, `Analyte ${k + 1}`)}||${rnd.int(5, 95)}|umol/L^^UCUM|0-100||||F|||20261202080000-0500`,
      `OBX|2|CWE|${code('57718-9', 'Interpretation')}||LA6576-8^Normal^LN||||||F|||20261202080000-0500`,
    );
  });
  return lines.join('\r');
}

/** The local codes newbornScreeningMessage(…, 'local') uses and the LOINC each stands for. */
export function newbornScreeningLocalCodes(): { local: string; loinc: string }[] {
  return [...NBS_PANELS, ...NBS_PANELS.map((_, k) => `${53000 + k}-1`), '57718-9'].map((loinc) => ({ local: `NB${loinc.replace('-', '')}`, loinc }));
}
