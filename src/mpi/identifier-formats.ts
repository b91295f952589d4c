import type { Identifier } from '@medplum/fhirtypes';

/**
 * How the numbers of one identifier system are written, so that two registrations of one number compare
 * equal and two different numbers never do. An identifier that agrees exactly lifts the name and birth-date
 * vetoes (match-model.ts), so folding too much is a false link: systems known to be written freely are
 * folded, anything else is compared as written.
 */
export interface IdentifierFormat {
  /**
   * compact: letters and digits only, upper case ("ab 12-34" = "AB1234"), for numbers written with
   * separators at will; digits: digits only, separators dropped, and a value with a letter is no such
   * number; as-written: trimmed, case and punctuation kept.
   */
  form: 'compact' | 'digits' | 'as-written';
  /** Leading zeros carry no meaning: payer systems that keep member numbers as integers drop them. */
  dropLeadingZeros?: boolean;
  /** Lengths a number of the system can have, after normalising. */
  length?: [min: number, max: number];
}

/** Systems whose format is published, by system URI (or, ending in '*', a URI prefix). */
export const SYSTEM_FORMATS: Record<string, IdentifierFormat> = {
  // US Medicare Beneficiary Identifier: 11 characters, printed as 1EG4-TE5-MK73.
  'http://hl7.org/fhir/sid/us-mbi': { form: 'compact', length: [11, 11] },
  // US Medicare Health Insurance Claim Number (before the MBI).
  'http://hl7.org/fhir/sid/us-medicare': { form: 'compact' },
  // NHS number (England, Wales): 10 digits, printed 943 476 5919.
  'https://fhir.nhs.uk/Id/nhs-number': { form: 'digits', length: [10, 10] },
  // Passports, one system per issuing country.
  'http://hl7.org/fhir/sid/passport-*': { form: 'compact' },
  // US state driver's licences (one OID per state under 2.16.840.1.113883.4.3).
  'urn:oid:2.16.840.1.113883.4.3.*': { form: 'compact' },
};

/**
 * Formats by HL7 v2-0203 identifier type, for systems not listed above: a deployment's own URI for a
 * driver's licence or an insurer's member number says by its type what kind of number it is.
 */
export const TYPE_FORMATS: Record<string, IdentifierFormat> = {
  SS: { form: 'compact' },
  DL: { form: 'compact' },
  PPN: { form: 'compact' },
  NI: { form: 'compact' },
  NH: { form: 'compact' },
  JHN: { form: 'compact' },
  MA: { form: 'compact' },
  MC: { form: 'compact' },
  // Insurance member and subscriber numbers.
  MB: { form: 'compact', dropLeadingZeros: true },
  SN: { form: 'compact', dropLeadingZeros: true },
};

/** A system neither listed nor typed: compared as written. */
const UNKNOWN: IdentifierFormat = { form: 'as-written' };

/** The format of an identifier's system: its own entry, a prefix entry, its type's, else as written. */
export function identifierFormat(identifier: Pick<Identifier, 'system' | 'type'>): IdentifierFormat {
  const system = identifier.system ?? '';
  const bySystem = SYSTEM_FORMATS[system] ?? Object.entries(SYSTEM_FORMATS).find(([key]) => key.endsWith('*') && system.startsWith(key.slice(0, -1)))?.[1];
  if (bySystem) return bySystem;
  const type = identifier.type?.coding?.map((c) => c.code ?? '').find((code) => code in TYPE_FORMATS || /^NN[A-Z]{3}$/.test(code));
  return type ? (TYPE_FORMATS[type] ?? TYPE_FORMATS.NI) : UNKNOWN;
}

/**
 * The identifier's value as its system writes it, for comparison; undefined when it is no number of the
 * system (a letter in a digits-only number, a length the system does not have) or a placeholder (fewer
 * than 3 characters, or one character repeated: 000000, XXXXXX).
 */
export function normalizeIdentifier(identifier: Pick<Identifier, 'system' | 'type' | 'value'>): string | undefined {
  const format = identifierFormat(identifier);
  const written = (identifier.value ?? '').trim();
  let value: string;
  if (format.form === 'as-written') {
    value = written;
  } else {
    value = written.toUpperCase().replace(/[^A-Z0-9]/g, '');
    if (format.form === 'digits' && /[A-Z]/.test(value)) return undefined;
  }
  if (format.dropLeadingZeros) value = value.replace(/^0+(?=.)/, '');
  if (format.length && (value.length < format.length[0] || value.length > format.length[1])) return undefined;
  return value.length >= 3 && !/^(.)\1*$/.test(value) ? value : undefined;
}
