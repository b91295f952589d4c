import { LocalCodes } from '../codes/local-codes.js';
import { CodeBackfill } from '../codes/backfill.js';
import type { FastifyInstance } from 'fastify';
import { createRequire } from 'node:module';
import { prepareFhirModel } from '../engine/prepare-model.js';
import { loadOrCreateSigningKey } from '../security/signing-key.js';
import { TokenService } from '../security/token-service.js';
import { FederatedSignIn } from '../auth/federation.js';
import type { Database } from '../store/database.js';
import { openDatabase } from '../store/open.js';
import { Repository } from '../store/repository.js';
import { GOLDEN_RECORDS } from '../mpi/golden-record.js';
import { currentMatchModel } from '../mpi/model-store.js';
import { storeAddressOf } from '../store/store-address.js';
import { ModelUpkeep } from '../mpi/model-upkeep.js';
import { PatientLinker } from '../mpi/patient-linker.js';
import { hideDerivedRecords } from '../search/derived-records.js';
import type { TesseraConfig } from './config.js';
import { buildHttpApp } from './http-app.js';
import { readFileSync } from 'node:fs';
import { Hl7v2Intake } from '../ingest/hl7v2-intake.js';
import { CcdaIntake } from '../ingest/ccda-intake.js';
import { IntakeBatcher } from '../ingest/intake-batcher.js';
import { MllpListener } from '../hl7v2/mllp-listener.js';
import { ConsentObserver } from '../consent/consent-store.js';
import { privacyRestrictionSource } from '../consent/privacy-restriction.js';
import { configureRestrictions } from '../engine/request-policy.js';
import { subscriptionOwnershipSource } from '../notify/subscription-ownership.js';
import { AuditAttachment } from '../audit/audit-attachment.js';
import { ReferencedLabels } from '../labels/referenced-labels.js';
import type { AuditLog } from '../audit/audit-log.js';
import { openAuditLog } from '../audit/audit-store.js';
import { recordIntake } from '../audit/intake-audit.js';
import { MessageLog } from '../messages/message-log.js';
import { NotificationOutbox } from '../notify/notification-outbox.js';
import { SubscriptionRegistry } from '../notify/subscription-registry.js';
import { RosterObserver } from '../notify/rosters.js';
import { WebSocketHub } from '../notify/websocket-hub.js';
import { DeliveryWorker } from '../notify/delivery-worker.js';
import { notifySettingsFromEnv } from '../notify/notify-settings.js';
import { listenOrigin } from './listen-origin.js';

export const VERSION: string = createRequire(import.meta.url)('../../package.json').version;

export interface Tessera {
  app: FastifyInstance;
  db: Database;
  repo: Repository;
  tokens: TokenService;
  config: TesseraConfig;
  intake: Hl7v2Intake;
  ccda: CcdaIntake;
  /** The audit log (absent with TESSERA_AUDIT=off). */
  audit?: AuditLog;
  /** Applies changed local-code mappings to what already arrived (src/codes/backfill.ts); `serve` starts it. */
  codeBackfill: CodeBackfill;
  /** The match model's upkeep (model-upkeep.ts), with the MPI on: `tessera serve` runs it every TESSERA_MPI_UPKEEP_SECONDS. */
  mpiUpkeep?: ModelUpkeep;
  /** The notification delivery workers of this process (docs/notifications.md). */
  notifications: DeliveryWorker;
  /** Starts the delivery workers (`tessera serve` does unless TESSERA_NOTIFY=off); resolves once they listen for commits. */
  startNotifications(): Promise<void>;
  /** Starts the HL7 v2 MLLP listener (after applying messages a crash left unprocessed); returns its port. */
  startMllp(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Opens the store (running migrations), loads the FHIR definitions and signing key, and builds the app. */
export async function createTessera(config: TesseraConfig, options: { logStream?: NodeJS.WritableStream; /** Audit commits on a writer thread (default); CLI commands commit inline. */ auditThread?: boolean } = {}): Promise<Tessera> {
  prepareFhirModel();
  const db = await openDatabase(config);
  const repo = new Repository(db);
  // Always, not only with the MPI on: a store may hold golden records written while it was on.
  hideDerivedRecords(GOLDEN_RECORDS);
  const linker = config.mpi ? new PatientLinker(await currentMatchModel(db)) : undefined;
  if (linker) repo.observe(linker);
  const mpiUpkeep = linker && new ModelUpkeep(repo, linker, { store: storeAddressOf(config) });
  // After the patient index: a consent's rows name the person's records as linked by then.
  repo.observe(new ConsentObserver());
  // Participants' local codes get their standard codings on every write, from any entry (src/codes).
  const codeBackfill = new CodeBackfill(repo, (err) => app.log.error({ err: { message: (err as Error).message } }, 'local codes: applying changed mappings to stored resources failed; retried'));
  repo.observe(new LocalCodes(codeBackfill));
  // After LocalCodes: a referenced resource's mapped codes count for its labels.
  repo.observe(new ReferencedLabels());
  configureRestrictions(db, [privacyRestrictionSource(config.consentDefault), subscriptionOwnershipSource]);
  // After the patient index, whose golden-record writes (merges) raise events too; in the data's transaction.
  // Subscriptions first: one written in the same transaction as data is active when the outbox looks.
  const outbox = new NotificationOutbox();
  const subscriptions = new SubscriptionRegistry(outbox);
  repo.observe(subscriptions);
  repo.observe(outbox);
  repo.observe(new RosterObserver());
  // A background commit of journalled audit events that fails is retried; the operator hears of it here.
  const auditFailed = (err: unknown) => app.log.error({ err: { message: (err as Error).message } }, 'audit log: committing journalled events failed; they stay in the journal and are retried');
  const audit = config.audit ? await openAuditLog(config, db, { onError: auditFailed, thread: options.auditThread ?? true }) : undefined;
  repo.observe(new AuditAttachment(audit));
  const signingKey = await loadOrCreateSigningKey(config.dataDir);
  const tokens = new TokenService(db, signingKey, config.rolePurposes);
  const federation = config.oidc ? new FederatedSignIn(config.oidc) : undefined;
  const intake = new Hl7v2Intake(repo);
  const ccda = new CcdaIntake(repo, config.ccdaMaxBytes);
  const app = buildHttpApp({ db, repo, intake, ccda, ccdaMaxBytes: config.ccdaMaxBytes, tokens, signingKey, lockout: config.lockout, federation, audit, baseUrl: config.baseUrl, rateLimitPerMinute: config.rateLimitPerMinute, bodyLimit: config.bodyLimit, logLevel: config.logLevel, version: VERSION, logStream: options.logStream });
  const hub = new WebSocketHub(() => repo.sql);
  subscriptions.hub = hub;
  hub.attach(app.server);
  const notifySettings = notifySettingsFromEnv();
  const notifications = new DeliveryWorker(repo, notifySettings, () => config.baseUrl ?? listenOrigin(app.server), hub, app.log, outbox);
  subscriptions.onChange = () => notifications.cache.invalidate();
  // A bound socket can take the events waiting for it now, not at the next poll.
  hub.onBound = (id, socket) => void notifications.handshake(id).then((text) => (text && socket.send(text), notifications.wake()));
  let notifying = false;
  let mllp: MllpListener | undefined;
  let closed = false;
  return {
    app,
    db,
    repo,
    tokens,
    config,
    intake,
    ccda,
    audit,
    codeBackfill,
    mpiUpkeep,
    notifications,
    async startNotifications() {
      if (notifying) return;
      notifying = true;
      await notifications.start();
    },
    async startMllp() {
      if (config.mllpPort < 0 || mllp) return undefined;
      const recovered = await intake.recover();
      if (recovered) app.log.warn({ recovered }, 'applied HL7 v2 messages stored but not processed before the last stop');
      const batcher = new IntakeBatcher(repo);
      mllp = new MllpListener(async (bytes, connection) => {
        const result = await batcher.submit(bytes, 'mllp', connection);
        // Acknowledged only once the message's AuditEvent is journalled, like an HTTP answer.
        await recordIntake(repo, result.messageId);
        return result.ack;
      });
      const certs = config.mllpTlsCert && config.mllpTlsKey ? { cert: readFileSync(config.mllpTlsCert, 'utf8'), key: readFileSync(config.mllpTlsKey, 'utf8') } : undefined;
      return mllp.start({ port: config.mllpPort, host: config.host, tls: certs });
    },
    async close() {
      if (closed) return;
      closed = true;
      // Stop taking messages first and finish the ones being handled, so each stored one is acknowledged.
      await mllp?.stop();
      await notifications.stop();
      await codeBackfill.stop();
      await mpiUpkeep?.stop();
      hub.close();
      // fastify's close stops accepting connections and waits for in-flight requests (and their writes).
      await app.close();
      await audit?.close();
      await db.close();
    },
  };
}

/** Serves until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serve(tessera: Tessera): Promise<string> {
  const recovered = await tessera.ccda.recover();
  if (recovered) tessera.app.log.warn({ recovered }, 'applied C-CDA documents stored but not processed before the last stop');
  const address = await tessera.app.listen({ port: tessera.config.port, host: tessera.config.host });
  if (!tessera.config.baseUrl && ['0.0.0.0', '::'].includes(tessera.config.host)) {
    tessera.app.log.warn({ address }, 'TESSERA_BASE_URL is not set: links and the token endpoint name the listen address; set it to the URL clients use');
  }
  const mllpPort = await tessera.startMllp();
  if (mllpPort !== undefined) tessera.app.log.info({ port: mllpPort, tls: !!tessera.config.mllpTlsCert }, 'HL7 v2 MLLP listener started');
  if (notifySettingsFromEnv().workers) await tessera.startNotifications();
  tessera.codeBackfill.start();
  if (tessera.config.mpiUpkeepSeconds) {
    tessera.mpiUpkeep?.start(
      tessera.config.mpiUpkeepSeconds * 1000,
      (err) => tessera.app.log.error({ err: { message: (err as Error).message } }, 'patient index: the match model upkeep failed; tried again at its next run'),
      ({ adopted, ...work }) => tessera.app.log.info({ ...adopted, ...work }, 'patient index: a match model learned from the index is in force; the review queue was matched again under it'),
    );
  }
  const stop = async (signal: string) => {
    tessera.app.log.info({ signal }, 'shutting down');
    await tessera.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  return address;
}
