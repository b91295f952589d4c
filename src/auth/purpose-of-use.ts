import { OAuthError } from './oauth-error.js';

/**
 * Purposes of use a request may declare (IHE IUA `purpose_of_use`, codes of HL7 v3 PurposeOfUse): the
 * access policy decides what each allows; here a value outside the list is refused.
 */
export const PURPOSES_OF_USE = ['TREAT', 'ETREAT', 'HPAYMT', 'HOPERAT', 'PUBHLTH', 'PATRQT', 'BTG'] as const;

/** The purposes each user role may declare. */
export type RolePurposes = Readonly<Record<string, readonly string[]>>;

/**
 * The community's default (TESSERA_ROLE_PURPOSES changes it, rolePurposesFromEnv): a clinician treats
 * (and may declare an emergency or break-the-glass purpose, which lift nothing by themselves); a patient
 * asks for their own record; the exchange's staff work for its operations. Payment and public health are
 * purposes of systems (backend clients registered for them), not of a role.
 */
export const DEFAULT_ROLE_PURPOSES: RolePurposes = {
  clinician: ['TREAT', 'ETREAT', 'BTG'],
  patient: ['PATRQT'],
  'privacy-officer': ['HOPERAT'],
  steward: ['HOPERAT'],
  'interface-analyst': ['HOPERAT'],
  admin: ['HOPERAT'],
};

/**
 * Why `purpose` may not be declared by this client (its registered purposes; null: any) and user (by
 * role; none for a backend client), or undefined when it may. An undeclared purpose is always allowed:
 * it binds the caller by every consent deny (docs/governance.md).
 */
export function purposeRefusal(purpose: string | undefined, clientPurposes: readonly string[] | null, role?: string, rolePurposes: RolePurposes = DEFAULT_ROLE_PURPOSES): string | undefined {
  if (!purpose) return undefined;
  if (clientPurposes && !clientPurposes.includes(purpose)) {
    return `purpose_of_use ${purpose} is not registered for this client (${clientPurposes.join(', ') || 'none'})`;
  }
  const allowed = role === undefined ? undefined : (rolePurposes[role] ?? []);
  if (allowed && !allowed.includes(purpose)) {
    return `purpose_of_use ${purpose} is not one a ${role} user may declare (${allowed.join(', ') || 'none'})`;
  }
  return undefined;
}

/**
 * The role table as the community configures it: TESSERA_ROLE_PURPOSES, `role=CODE+CODE;role=CODE`
 * (e.g. `clinician=TREAT+ETREAT+BTG+PUBHLTH` where clinicians report to public health); a role not named
 * keeps its default, and `role=` lets it declare none. An unknown role or code stops the start.
 */
export function rolePurposesFromEnv(value: string | undefined, roles: readonly string[]): RolePurposes {
  if (!value?.trim()) return DEFAULT_ROLE_PURPOSES;
  const table: Record<string, readonly string[]> = { ...DEFAULT_ROLE_PURPOSES };
  for (const entry of value.split(';').map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const role = entry.slice(0, eq).trim();
    if (eq < 0 || !roles.includes(role)) {
      throw new Error(`TESSERA_ROLE_PURPOSES: "${entry}" must be role=CODE+CODE, the role one of ${roles.join(', ')}`);
    }
    try {
      table[role] = parsePurposeList(entry.slice(eq + 1).replaceAll('+', ','));
    } catch (err) {
      throw new Error(`TESSERA_ROLE_PURPOSES, ${role}: ${(err as Error).message}`);
    }
  }
  return table;
}

/** Parses a comma-separated list of purposes of use (CLI), refusing unknown codes. */
export function parsePurposeList(list: string): string[] {
  const codes = list.split(',').map((c) => c.trim()).filter(Boolean);
  for (const code of codes) {
    if (!(PURPOSES_OF_USE as readonly string[]).includes(code)) throw new Error(`Unknown purpose of use "${code}" (one of ${PURPOSES_OF_USE.join(', ')})`);
  }
  return codes;
}

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
