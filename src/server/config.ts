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
    ...defined,
  };
}
