import { OAuthError } from './oauth-error.js';

/**
 * Purposes of use a request may declare (IHE IUA `purpose_of_use`, codes of HL7 v3 PurposeOfUse): the
 * access policy decides what each allows; here a value outside the list is refused.
 */
export const PURPOSES_OF_USE = ['TREAT', 'ETREAT', 'HPAYMT', 'HOPERAT', 'PUBHLTH', 'PATRQT', 'BTG'] as const;

/** The declared purpose, or undefined when none was given; an unknown value is invalid_request. */
export function parsePurposeOfUse(value: string | undefined): string | undefined {
  if (value === undefined || value === '') {
    return undefined;
  }
  // IUA sends a coded value; accept the bare code or `system|code` with the HL7 v3 PurposeOfUse system.
  const code = value.includes('|') ? value.slice(value.indexOf('|') + 1) : value;
  if (!(PURPOSES_OF_USE as readonly string[]).includes(code)) {
    throw new OAuthError(400, 'invalid_request', `purpose_of_use must be one of ${PURPOSES_OF_USE.join(', ')}`);
  }
  return code;
}
