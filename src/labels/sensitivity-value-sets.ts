/**
 * The value sets Tessera labels data by: which codes make a record sensitive, and of which kind. Kinds
 * are the HL7 ActInformationSensitivityPolicy codes (v3-ActCode) that IHE Privacy Consent on FHIR's
 * advanced option names (ETH, PSY, HIV, SDV) plus STD, SEX (sexual and reproductive health) and GDIS
 * (genetic). A curated starting list from the code systems' own definitions, meant to be reviewed by each
 * community's privacy officer (docs/governance.md lists what is in it); ICD-10-CM by category, the
 * other systems by code.
 */
export const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

export type SensitivityKind = 'ETH' | 'PSY' | 'HIV' | 'STD' | 'SEX' | 'GDIS' | 'SDV';

export const SENSITIVITY_DISPLAY: Record<SensitivityKind, string> = {
  ETH: 'substance abuse information sensitivity',
  PSY: 'psychiatry disorder information sensitivity',
  HIV: 'HIV/AIDS information sensitivity',
  STD: 'sexually transmitted disease information sensitivity',
  SEX: 'sexuality and reproductive health information sensitivity',
  GDIS: 'genetic disease information sensitivity',
  SDV: 'sexual assault, abuse, or domestic violence information sensitivity',
};

const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

/** ICD-10(-CM) category ranges (first three characters, inclusive) per kind. */
const ICD10_RANGES: [from: string, to: string, kind: SensitivityKind][] = [
  ['F10', 'F16', 'ETH'], // mental and behavioural disorders due to alcohol, opioids, cannabinoids, sedatives, cocaine, stimulants, hallucinogens
  ['F18', 'F19', 'ETH'], // inhalants, other psychoactive substances (F17, nicotine, is not covered by 42 CFR Part 2)
  ['F20', 'F99', 'PSY'],
  ['B20', 'B24', 'HIV'],
  ['Z21', 'Z21', 'HIV'], // asymptomatic HIV infection status
  ['A50', 'A64', 'STD'],
  ['O00', 'O08', 'SEX'], // pregnancy with abortive outcome
  ['Z30', 'Z30', 'SEX'], // contraceptive management
  ['Z15', 'Z15', 'GDIS'], // genetic susceptibility to disease
  ['T74', 'T74', 'SDV'], // adult and child abuse, confirmed
  ['T76', 'T76', 'SDV'], // adult and child abuse, suspected
];

/** Codes per system and kind. */
const CODES: Record<string, Partial<Record<SensitivityKind, string[]>>> = {
  [SNOMED]: {
    ETH: ['66590003', '7200002', '191816009', '5602001', '75544000'],
    PSY: ['35489007', '370143000', '58214004', '13746004', '197480006', '47505003', '69322001'],
    HIV: ['86406008', '165816005', '62479008'],
    STD: ['76272004', '15628003', '105629000', '33839006'],
    SEX: ['386639001', '57797005'],
  },
  [LOINC]: {
    // HIV-1 RNA viral load, HIV-1 Ab, HIV 1+2 Ab, HIV 1+2 Ab+Ag (p24)
    HIV: ['20447-9', '7917-8', '31201-7', '75622-1', '56888-1', '25836-8'],
    // syphilis (RPR, treponemal Ab), chlamydia and gonorrhoea NAA
    STD: ['20507-0', '22461-8', '43304-5', '43305-2', '21613-5', '24111-7'],
    // urine opiates screen
    ETH: ['19295-5'],
  },
  [RXNORM]: {
    // buprenorphine, methadone, naltrexone, disulfiram, acamprosate: treatments for substance use disorder
    ETH: ['1819', '6813', '7243', '3554', '82819'],
  },
};

const codeIndex = new Map<string, SensitivityKind>();
for (const [system, kinds] of Object.entries(CODES)) {
  for (const [kind, codes] of Object.entries(kinds)) {
    for (const code of codes ?? []) codeIndex.set(`${system}|${code}`, kind as SensitivityKind);
  }
}

/** The kind of sensitive information a coding denotes, if any. */
export function sensitivityOf(system: string | undefined, code: string | undefined): SensitivityKind | undefined {
  if (!system || !code) {
    return undefined;
  }
  if (system === ICD10CM || system === ICD10) {
    const category = code.slice(0, 3).toUpperCase();
    return ICD10_RANGES.find(([from, to]) => category >= from && category <= to)?.[2];
  }
  return codeIndex.get(`${system}|${code}`);
}
