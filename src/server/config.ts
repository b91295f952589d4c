import { DEFAULT_MAX_XML_BYTES } from '../ccda/secure-xml.js';
import type { FederationSettings } from '../auth/federation.js';
import { DEFAULT_LOCKOUT, type LockoutPolicy } from '../users/lockout.js';
import { rolePurposesFromEnv, type RolePurposes } from '../auth/purpose-of-use.js';
import { ROLES } from '../users/user-directory.js';

/** Runtime configuration: CLI flags override environment variables, which override defaults. */
export interface TesseraConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  /** PostgreSQL schema (tests use one per run); default: the connection's search_path. */
  schema?: string;
  baseUrl?: string;
  bodyLimit: number;
  logLevel: string;
  /** Master patient index on Patient writes (docs/matching.md); on unless TESSERA_MPI=0. */
  mpi: boolean;
  /** Seconds between runs of the match model's upkeep in `tessera serve` (TESSERA_MPI_UPKEEP_SECONDS, default 60; 0: off; model-upkeep.ts). */
  mpiUpkeepSeconds: number;
  /** HL7 v2 MLLP listener port (default 2575; 0 picks a free one; negative turns the listener off). */
  mllpPort: number;
  /** Largest C-CDA document accepted, in bytes (TESSERA_CCDA_MAX_BYTES, default 10 MiB). */
  ccdaMaxBytes: number;
  /** PEM files: MLLP over TLS when both are set. */
  mllpTlsCert?: string;
  mllpTlsKey?: string;
  /** The community's consent default (TESSERA_CONSENT_DEFAULT): opt-out shares unless a patient denies; opt-in only what a patient permits. */
  consentDefault: 'opt-out' | 'opt-in';
  /** The purposes of use each user role may declare (TESSERA_ROLE_PURPOSES, docs/governance.md). */
  rolePurposes: RolePurposes;
  /**
   * Requests per minute per authenticated client (TESSERA_RATE_LIMIT; 0: no limit). The default, 60,000
   * (1,000 a second), is above what one Tessera process serves of real FHIR work: the R4 examples test
   * sends 10,600 requests from one client in 45 s on a 2-core machine, so 6,000 would throttle ordinary
   * bulk clients. Deployments set it to what their participants need.
   */
  rateLimitPerMinute: number;
  /** PostgreSQL statement_timeout in ms (TESSERA_STATEMENT_TIMEOUT_MS, default 30 s; 0: none). */
  statementTimeoutMs: number;
  /** The audit log (docs/audit.md); on unless TESSERA_AUDIT=off (benchmark comparisons only). */
  audit: boolean;
  /** Sign-in lockout: TESSERA_LOCKOUT_ATTEMPTS failures in a row (default 5) lock for TESSERA_LOCKOUT_MINUTES (default 15). */
  lockout: LockoutPolicy;
  /** Federated sign-in (TESSERA_OIDC_ISSUER, TESSERA_OIDC_CLIENT_ID, TESSERA_OIDC_CLIENT_SECRET); off without an issuer. */
  oidc?: FederationSettings;
}

function positiveNumber(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!(n > 0)) throw new Error(`${name} must be a positive number, not "${value}"`);
  return n;
}

export function configFromEnv(overrides: Partial<TesseraConfig> = {}): TesseraConfig {
  const env = process.env;
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return {
    port: Number(env.PORT ?? 8080),
    host: env.HOST ?? '127.0.0.1',
    dataDir: env.TESSERA_DATA ?? './data',
    databaseUrl: env.DATABASE_URL || undefined,
    schema: env.TESSERA_PG_SCHEMA || undefined,
    baseUrl: env.TESSERA_BASE_URL || undefined,
    bodyLimit: Number(env.TESSERA_BODY_LIMIT ?? 64 * 1024 * 1024),
    logLevel: env.LOG_LEVEL ?? 'info',
    mpi: env.TESSERA_MPI !== '0' && env.TESSERA_MPI !== 'false',
    mpiUpkeepSeconds: wholeNumber('TESSERA_MPI_UPKEEP_SECONDS', env.TESSERA_MPI_UPKEEP_SECONDS, 60),
    mllpPort: env.TESSERA_MLLP_PORT === 'off' ? -1 : Number(env.TESSERA_MLLP_PORT ?? 2575),
    ccdaMaxBytes: Number(env.TESSERA_CCDA_MAX_BYTES ?? DEFAULT_MAX_XML_BYTES),
    mllpTlsCert: env.TESSERA_MLLP_TLS_CERT || undefined,
    mllpTlsKey: env.TESSERA_MLLP_TLS_KEY || undefined,
    consentDefault: consentDefault(env.TESSERA_CONSENT_DEFAULT),
    rolePurposes: rolePurposesFromEnv(env.TESSERA_ROLE_PURPOSES, ROLES),
    rateLimitPerMinute: wholeNumber('TESSERA_RATE_LIMIT', env.TESSERA_RATE_LIMIT, 60_000),
    statementTimeoutMs: wholeNumber('TESSERA_STATEMENT_TIMEOUT_MS', env.TESSERA_STATEMENT_TIMEOUT_MS, 30_000),
    audit: env.TESSERA_AUDIT !== 'off',
    lockout: {
      maxAttempts: positiveNumber(env.TESSERA_LOCKOUT_ATTEMPTS, DEFAULT_LOCKOUT.maxAttempts, 'TESSERA_LOCKOUT_ATTEMPTS'),
      lockMinutes: positiveNumber(env.TESSERA_LOCKOUT_MINUTES, DEFAULT_LOCKOUT.lockMinutes, 'TESSERA_LOCKOUT_MINUTES'),
    },
    oidc: env.TESSERA_OIDC_ISSUER
      ? { issuer: env.TESSERA_OIDC_ISSUER, clientId: env.TESSERA_OIDC_CLIENT_ID ?? '', clientSecret: env.TESSERA_OIDC_CLIENT_SECRET || undefined }
      : undefined,
    ...defined,
  };
}

function consentDefault(value: string | undefined): 'opt-out' | 'opt-in' {
  if (value === undefined || value === '' || value === 'opt-out') return 'opt-out';
  if (value === 'opt-in') return 'opt-in';
  throw new Error(`TESSERA_CONSENT_DEFAULT must be opt-out or opt-in, not "${value}"`);
}

/** A safeguard's setting: a whole number (0 turns it off); a typo fails the start instead of silently turning it off. */
function wholeNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number (0: off), not "${value}"`);
  return n;
}
