import type { Practitioner, PractitionerRole } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import type { SqlExecutor } from '../store/database.js';
import type { Repository } from '../store/repository.js';
import { newResourceId } from '../store/resource-id.js';
import { checkPasswordPolicy, hashPassword } from './passwords.js';
import { generateTotpSecret, totpUri } from './totp.js';

/** The roles of docs/governance.md. Every role but `patient` is staff of a participant Organization. */
export const ROLES = ['clinician', 'privacy-officer', 'steward', 'interface-analyst', 'admin', 'patient'] as const;
export type Role = (typeof ROLES)[number];

/** Whether a user of this role does a privacy officer's work (the audit log, consents, break-the-glass review). */
export function doesPrivacyWork(role: string): boolean {
  return role === 'privacy-officer';
}

/** A person who may sign in. Secrets (password hash, TOTP secret) stay in the table and never leave this module's callers' logs. */
export interface DirectoryUser {
  id: string;
  name: string;
  email: string;
  role: Role;
  /** `Organization/{id}`. */
  organization: string;
  /** `Practitioner/{id}` for staff, `Patient/{id}` for patients. */
  fhirUser: string | null;
  passwordHash: string | null;
  totpSecret: string | null;
  totpLastStep: number | null;
  failedAttempts: number;
  lockedUntil: number | null;
  disabled: boolean;
  oidcIssuer: string | null;
  oidcSubject: string | null;
}

interface UserRow {
  id: string;
  name: string;
  email: string;
  role: string;
  organization: string;
  fhir_user: string | null;
  password_hash: string | null;
  totp_secret: string | null;
  totp_last_step: number | string | null;
  failed_attempts: number;
  locked_until: number | string | null;
  disabled: number;
  oidc_issuer: string | null;
  oidc_subject: string | null;
}

const COLUMNS =
  'id, name, email, role, organization, fhir_user, password_hash, totp_secret, totp_last_step, failed_attempts, locked_until, disabled, oidc_issuer, oidc_subject';

const nullableNumber = (v: number | string | null): number | null => (v === null ? null : Number(v));

function toUser(r: UserRow): DirectoryUser {
  return {
    id: r.id,
    name: r.name,
    email: r.email,
    role: r.role as Role,
    organization: r.organization,
    fhirUser: r.fhir_user,
    passwordHash: r.password_hash,
    totpSecret: r.totp_secret,
    totpLastStep: nullableNumber(r.totp_last_step),
    failedAttempts: Number(r.failed_attempts),
    lockedUntil: nullableNumber(r.locked_until),
    disabled: !!Number(r.disabled),
    oidcIssuer: r.oidc_issuer,
    oidcSubject: r.oidc_subject,
  };
}

/** Emails are compared case-insensitively: stored trimmed and in lower case. */
export const normaliseEmail = (email: string): string => email.trim().toLowerCase();

export interface NewUser {
  name: string;
  email: string;
  role: string;
  /** Organization id (the user's `Organization/{id}` must exist). */
  organization: string;
  password?: string;
  /** For role `patient`: the id of the user's own Patient (must exist). */
  patient?: string;
}

/**
 * Adds a user. Staff get a Practitioner and a PractitionerRole at their Organization in the FHIR store and
 * that Practitioner as fhirUser; a patient is linked to their existing Patient. One transaction.
 */
export async function addUser(repo: Repository, input: NewUser): Promise<DirectoryUser> {
  const email = normaliseEmail(input.email);
  if (!input.name.trim()) throw new Error('A user needs a name');
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new Error(`"${input.email}" is not an email address`);
  if (!(ROLES as readonly string[]).includes(input.role)) throw new Error(`Unknown role "${input.role}" (one of ${ROLES.join(', ')})`);
  if (input.password !== undefined) checkPasswordPolicy(input.password);
  const role = input.role as Role;
  if (role === 'patient' && !input.patient) throw new Error('A user with role patient needs --patient (the id of their Patient)');
  if (role !== 'patient' && input.patient) throw new Error('--patient is only for role patient');
  const passwordHash = input.password !== undefined ? await hashPassword(input.password) : null;
  const id = randomUUID();
  return repo.transaction(async (tx) => {
    if (!(await tx.exists('Organization', input.organization))) throw new Error(`No Organization/${input.organization}`);
    if ((await tx.sql.query('SELECT 1 FROM app_user WHERE email = ?', [email])).length) throw new Error(`A user with email ${email} exists`);
    let fhirUser: string;
    if (role === 'patient') {
      if (!(await tx.exists('Patient', input.patient as string))) throw new Error(`No Patient/${input.patient}`);
      fhirUser = `Patient/${input.patient}`;
    } else {
      fhirUser = await createStaffResources(tx, input.name.trim(), email, role, input.organization);
    }
    await tx.sql.run(`INSERT INTO app_user (id, name, email, role, organization, fhir_user, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
      id,
      input.name.trim(),
      email,
      role,
      `Organization/${input.organization}`,
      fhirUser,
      passwordHash,
      Date.now(),
    ]);
    return (await findUser(tx.sql, id)) as DirectoryUser;
  });
}

/** The staff member's Practitioner and their PractitionerRole at the Organization; returns `Practitioner/{id}`. */
async function createStaffResources(tx: Repository, name: string, email: string, role: Role, organization: string): Promise<string> {
  const practitionerId = newResourceId();
  const practitioner: Practitioner = {
    resourceType: 'Practitioner',
    id: practitionerId,
    active: true,
    name: [{ text: name }],
    telecom: [{ system: 'email', value: email, use: 'work' }],
  };
  const practitionerRole: PractitionerRole = {
    resourceType: 'PractitionerRole',
    id: newResourceId(),
    active: true,
    practitioner: { reference: `Practitioner/${practitionerId}` },
    organization: { reference: `Organization/${organization}` },
    code: [{ coding: [{ system: 'urn:tessera:role', code: role }], text: role }],
  };
  await tx.update(practitioner);
  await tx.update(practitionerRole);
  return `Practitioner/${practitionerId}`;
}

export async function findUser(db: SqlExecutor, id: string): Promise<DirectoryUser | undefined> {
  const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM app_user WHERE id = ?`, [id]);
  return rows[0] && toUser(rows[0]);
}

export async function findUserByEmail(db: SqlExecutor, email: string): Promise<DirectoryUser | undefined> {
  const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM app_user WHERE email = ?`, [normaliseEmail(email)]);
  return rows[0] && toUser(rows[0]);
}

/** By id or by email: what the CLI accepts. */
export async function findUserByIdOrEmail(db: SqlExecutor, idOrEmail: string): Promise<DirectoryUser | undefined> {
  return idOrEmail.includes('@') ? findUserByEmail(db, idOrEmail) : findUser(db, idOrEmail);
}

export async function findUserByOidcSubject(db: SqlExecutor, issuer: string, subject: string): Promise<DirectoryUser | undefined> {
  const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM app_user WHERE oidc_issuer = ? AND oidc_subject = ?`, [issuer, subject]);
  return rows[0] && toUser(rows[0]);
}

export async function listUsers(db: SqlExecutor): Promise<DirectoryUser[]> {
  return (await db.query<UserRow>(`SELECT ${COLUMNS} FROM app_user ORDER BY email`)).map(toUser);
}

/** Disabling takes effect at once: token verification reads this flag on every request. */
export async function setUserDisabled(db: SqlExecutor, id: string, disabled: boolean): Promise<boolean> {
  // Enabling also clears a lockout: an administrator vouched for the account.
  const sql = disabled ? 'UPDATE app_user SET disabled = 1 WHERE id = ?' : 'UPDATE app_user SET disabled = 0, failed_attempts = 0, locked_until = NULL WHERE id = ?';
  return (await db.run(sql, [id])) > 0;
}

export async function setPassword(db: SqlExecutor, id: string, password: string): Promise<boolean> {
  checkPasswordPolicy(password);
  return (await db.run('UPDATE app_user SET password_hash = ?, failed_attempts = 0, locked_until = NULL WHERE id = ?', [await hashPassword(password), id])) > 0;
}

/** Enrols (or re-enrols) TOTP; returns the otpauth:// URI to show once. */
export async function enrolTotp(db: SqlExecutor, user: DirectoryUser): Promise<string> {
  const secret = generateTotpSecret();
  await db.run('UPDATE app_user SET totp_secret = ?, totp_last_step = NULL WHERE id = ?', [secret, user.id]);
  return totpUri(secret, user.email);
}

export async function linkOidcSubject(db: SqlExecutor, id: string, issuer: string, subject: string): Promise<void> {
  await db.run('UPDATE app_user SET oidc_issuer = ?, oidc_subject = ? WHERE id = ?', [issuer, subject, id]);
}
