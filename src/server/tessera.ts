import type { FastifyInstance } from 'fastify';
import { createRequire } from 'node:module';
import { prepareFhirModel } from './prepare-model.js';
import { loadOrCreateSigningKey } from '../security/signing-key.js';
import { TokenService } from '../security/token-service.js';
import type { Database } from '../store/database.js';
import { openDatabase } from '../store/open.js';
import { Repository } from '../store/repository.js';
import { GOLDEN_RECORDS } from '../mpi/golden-record.js';
import { currentMatchModel } from '../mpi/model-store.js';
import { PatientLinker } from '../mpi/patient-linker.js';
import { hideDerivedRecords } from '../search/derived-records.js';
import type { TesseraConfig } from './config.js';
import { buildHttpApp } from './http-app.js';

export const VERSION: string = createRequire(import.meta.url)('../../package.json').version;

export interface Tessera {
  app: FastifyInstance;
  db: Database;
  repo: Repository;
  tokens: TokenService;
  config: TesseraConfig;
  close(): Promise<void>;
}

/** Opens the store (running migrations), loads the FHIR definitions and signing key, and builds the app. */
export async function createTessera(config: TesseraConfig, options: { logStream?: NodeJS.WritableStream } = {}): Promise<Tessera> {
  prepareFhirModel();
  const db = await openDatabase(config);
  const repo = new Repository(db);
  // Always, not only with the MPI on: a store may hold golden records written while it was on.
  hideDerivedRecords(GOLDEN_RECORDS);
  if (config.mpi) {
    repo.observe(new PatientLinker(await currentMatchModel(db)));
  }
  const tokens = new TokenService(db, await loadOrCreateSigningKey(config.dataDir));
  const app = buildHttpApp({ db, repo, tokens, baseUrl: config.baseUrl, bodyLimit: config.bodyLimit, logLevel: config.logLevel, version: VERSION, logStream: options.logStream });
  let closed = false;
  return {
    app,
    db,
    repo,
    tokens,
    config,
    async close() {
      if (closed) return;
      closed = true;
      // fastify's close stops accepting connections and waits for in-flight requests (and their writes).
      await app.close();
      await db.close();
    },
  };
}

/** Serves until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serve(tessera: Tessera): Promise<string> {
  const address = await tessera.app.listen({ port: tessera.config.port, host: tessera.config.host });
  const stop = async (signal: string) => {
    tessera.app.log.info({ signal }, 'shutting down');
    await tessera.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  return address;
}
