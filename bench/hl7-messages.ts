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
