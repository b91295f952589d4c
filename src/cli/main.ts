import { Command, InvalidArgumentError } from 'commander';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { listImportFiles, importFiles, type ImportSummary } from '../ingest/fhir-files.js';
import { CCDA_FILE_EXTENSIONS, HL7V2_FILE_EXTENSIONS, importMessageFiles, isCcdaFile, type MessageFileOutcome } from '../ingest/message-files.js';
import { participantById } from '../participants/participants.js';
import { importFhirFilesAsParticipant } from '../ingest/attributed-fhir-files.js';
import { defaultWorkers, PreparePool } from '../ingest/prepare-pool.js';
import { createClient, setClientPurposes } from '../security/clients.js';
import { parsePurposeList } from '../auth/purpose-of-use.js';
import { setClearance } from '../consent/clearance.js';
import { refreshPlannerStatistics } from '../store/statistics.js';
import { configFromEnv, type TesseraConfig } from '../server/config.js';
import { createTessera, serve, VERSION } from '../server/tessera.js';
import { recordOperatorAction } from './operator-audit.js';
import { setTestEquivalences, testEquivalences } from '../record/test-equivalences.js';
import { ensureDemo } from './demo.js';
import { ensureDemoUsers } from './demo-users.js';
import { createProgressBar } from './progress.js';
import { latestModel, PRIOR_MODEL, saveModel, type StoredModel } from '../mpi/model-store.js';
import { labelledFromCsv, labelledFromFhir, type LabelledSample } from '../mpi/labelled-records.js';
import { qualityReport, qualitySummary } from '../mpi/evaluation.js';
import { PatientLinker } from '../mpi/patient-linker.js';
import { DEFAULT_TARGETS } from '../mpi/posterior-thresholds.js';
import { evaluateSample } from './sample-evaluation.js';
import { rebuildIndex } from '../mpi/rebuild.js';
import { learnBeforeRebuild } from '../mpi/learn-before-rebuild.js';
import { refreshAllConsents } from '../consent/consent-store.js';
import { trainFromIndex } from '../mpi/training.js';
import { formatModelChange, modelInForce } from './model-report.js';
import { registerInterfaceCommands, type StoreFlags } from './interface-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerUserCommands } from './user-commands.js';
import { registerConsentCommands } from './consent-commands.js';
import { registerCodeCommands } from './code-commands.js';
import { registerNotifyCommands } from './notify-commands.js';
import { registerLabelCommands } from './label-commands.js';


function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError('must be a port number');
  }
  return n;
}

function config(flags: StoreFlags & { port?: number }, quiet = false): TesseraConfig {
  return configFromEnv({ dataDir: flags.data, databaseUrl: flags.databaseUrl, port: flags.port, logLevel: quiet ? 'warn' : undefined });
}

const program = new Command();
program.name('tessera').description('Tessera Health Information Exchange').version(VERSION);

program
  .command('serve')
  .description('run the FHIR server')
  .option('--port <port>', 'HTTP port (env PORT, default 8080)', port)
  .option('--data <dir>', 'data directory for the embedded store and keys (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL); SQLite when absent')
  .option('--demo', 'on first start, load the synthetic demo community and create an admin client')
  .action(async (flags: StoreFlags & { port?: number; demo?: boolean }) => {
    const tessera = await createTessera(config(flags));
    if (flags.demo) {
      const demo = await ensureDemo(tessera);
      if (demo.loaded) {
        process.stderr.write(`Demo community loaded. Admin client credentials: ${demo.credentialsFile}\n`);
      } else {
        process.stderr.write(`Demo data already present. Admin client credentials: ${demo.credentialsFile}\n`);
      }
      const users = await ensureDemoUsers(tessera);
      process.stderr.write(`Portal users (one per role) and their passwords: ${users.usersFile}\n`);
    }
    let address = '';
    try {
      address = await serve(tessera);
    } catch (err) {
      await tessera.close();
      const e = err as NodeJS.ErrnoException & { port?: number };
      program.error(`tessera serve: ${e.code === 'EADDRINUSE' ? `port ${e.port} is already in use (HTTP --port / PORT, MLLP TESSERA_MLLP_PORT)` : e.message}`);
    }
    process.stderr.write(`Tessera ${VERSION} listening on ${address}/fhir (backend: ${tessera.db.dialect.name})\n`);
    if (tessera.config.mpi) process.stderr.write(`${modelInForce(await latestModel(tessera.db))}\n`);
  });

program
  .command('import')
  .description('import FHIR JSON resources, Bundles and NDJSON files, C-CDA documents (.xml, .ccda, .cda) and HL7 v2 message files (.hl7), or directories of them')
  .argument('<paths...>', 'files or directories')
  .option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)')
  .option('--workers <n>', 'worker threads that validate and index while the main thread writes (0: none)', String(defaultWorkers()))
  .option('--participant <id>', 'import on behalf of this participant (tessera participants list): each Bundle and document logged and attributed to it; required for C-CDA')
  .action(async (paths: string[], flags: StoreFlags & { workers: string; participant?: string }) => {
    const workers = Number(flags.workers);
    if (!Number.isInteger(workers) || workers < 0) {
      program.error(`tessera import: --workers must be a whole number, not "${flags.workers}"`);
    }
    for (const p of paths) {
      try {
        statSync(p);
      } catch {
        program.error(`tessera import: no such file or directory: ${p}`);
      }
    }
    const files = listImportFiles(paths);
    const messageFiles = listImportFiles(paths, [...CCDA_FILE_EXTENSIONS, ...HL7V2_FILE_EXTENSIONS]);
    if (messageFiles.some(isCcdaFile) && !flags.participant) {
      program.error('tessera import: C-CDA documents are imported on a participant\'s behalf: add --participant ID (see tessera participants list)');
    }
    // Workers load the R4 model while the main thread opens the store (each takes about 2 s).
    const pool = workers > 0 && files.length && !flags.participant ? new PreparePool(workers) : undefined;
    let summary: ImportSummary | undefined;
    let outcomes: MessageFileOutcome[] = [];
    try {
      const tessera = await createTessera(config(flags, true), { auditThread: false });
      try {
        const participant = flags.participant ? await participantById(tessera.repo, flags.participant) : undefined;
        if (flags.participant && !participant?.active) program.error(`tessera import: no active participant ${flags.participant}`);
        if (files.length && participant) {
          // On a participant's behalf: logged and attributed Bundle by Bundle (no bulk path).
          const bar = createProgressBar('Importing', files.length, 'files');
          let done = 0;
          summary = await importFhirFilesAsParticipant(tessera.repo, files, participant, () => {
            done++;
            bar.update(done, done);
          });
          bar.stop();
        } else if (files.length) {
          const totalBytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
          const bar = createProgressBar('Importing', totalBytes);
          summary = await importFiles(tessera.repo, files, { totalBytes, onProgress: (done, n) => bar.update(done, n) }, pool);
          bar.stop();
          await refreshPlannerStatistics(tessera.db);
        }
        if (messageFiles.length) {
          const bar = createProgressBar('Documents and messages', messageFiles.length, 'files');
          let done = 0;
          outcomes = await importMessageFiles({ hl7v2: tessera.intake, ccda: tessera.ccda }, messageFiles, participant, () => {
            done++;
            bar.update(done, done);
          });
          bar.stop();
        }
      } finally {
        await tessera.close();
      }
    } finally {
      await pool?.close();
    }
    if (summary) {
      const rate = Math.round(summary.resources / Math.max(summary.seconds, 0.001));
      process.stdout.write(`Imported ${summary.resources} resources from ${summary.files} files in ${summary.seconds.toFixed(1)} s (${rate} resources/s)\n`);
      for (const e of summary.errors) {
        const where = e.line !== undefined ? `:${e.line}` : e.entry !== undefined ? ` entry ${e.entry}` : '';
        process.stdout.write(`ERROR ${e.file}${where}: ${e.message}\n`);
      }
    }
    for (const o of outcomes) {
      const where = o.message ? `${o.file} message ${o.message}` : o.file;
      process.stdout.write(`${o.status === 'failed' ? 'ERROR' : o.status.toUpperCase()} ${where}: message ${o.messageId}${o.ackCode ? ` ${o.ackCode}` : ''}${o.detail ? ` ${o.detail}` : ''}${o.warnings.length ? ` (${o.warnings.length} warning(s): tessera messages show ${o.messageId})` : ''}\n`);
    }
    const failed = outcomes.filter((o) => o.status === 'failed').length;
    if (outcomes.length) {
      process.stdout.write(`${outcomes.length} document(s) and message(s): ${outcomes.length - failed} stored, ${failed} failed\n`);
    }
    const errors = (summary?.errors.length ?? 0) + failed;
    if (errors) {
      process.stdout.write(`${errors} error(s)\n`);
      process.exitCode = 1;
    }
  });

const clients = program.command('clients').description('manage OAuth clients (SMART Backend Services and App Launch)');
clients
  .command('create')
  .description('register a client and print its id and secret as JSON')
  .requiredOption('--name <name>', 'client name')
  .requiredOption('--scope <scopes>', 'allowed SMART scopes, e.g. "system/*.cruds" or "system/Patient.rs system/Observation.rs"')
  .option('--jwks <file>', 'JWKS file with the public keys of a private_key_jwt client (no secret is issued)')
  .option('--redirect-uri <uri>', 'where the authorization endpoint may send users back (SMART App Launch); repeatable', (v: string, all: string[] = []) => [...all, v])
  .option('--public', 'a public app (browser or native): no secret, PKCE only; needs --redirect-uri')
  .option('--purposes <codes>', 'purposes of use it may declare, e.g. TREAT or HPAYMT,HOPERAT (default: any)')
  .option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)')
  .action(async (flags: StoreFlags & { name: string; scope: string; jwks?: string; redirectUri?: string[]; public?: boolean; purposes?: string }) => {
    let jwks;
    if (flags.jwks) {
      try {
        jwks = JSON.parse(readFileSync(flags.jwks, 'utf8'));
      } catch (err) {
        program.error(`tessera clients create: cannot read JWKS ${flags.jwks}: ${(err as Error).message}`);
      }
    }
    const tessera = await createTessera(config(flags, true), { auditThread: false });
    try {
      const purposes = flags.purposes === undefined ? undefined : parsePurposeList(flags.purposes);
      const client = await createClient(tessera.db, { name: flags.name, scope: flags.scope, jwks, redirectUris: flags.redirectUri, public: flags.public, purposes });
      await recordOperatorAction(tessera, 'clients create', `client:${client.clientId}`);
      process.stdout.write(`${JSON.stringify(client, null, 2)}\n`);
    } catch (err) {
      program.error(`tessera clients create: ${(err as Error).message}`);
    } finally {
      await tessera.close();
    }
  });

clients
  .command('clearance <clientId> <kinds>')
  .description('which kinds of sensitive data a client reads without consent: e.g. HIV,STD, V, * (all) or none')
  .option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)')
  .action(async (clientId: string, kinds: string, flags: StoreFlags) => {
    const tessera = await createTessera(config(flags, true), { auditThread: false });
    try {
      const list = kinds === 'none' ? [] : kinds.split(',').map((k) => k.trim()).filter(Boolean);
      await setClearance(tessera.db, `client:${clientId}`, list);
      await recordOperatorAction(tessera, 'clients clearance', `client:${clientId}`);
      process.stdout.write(`client ${clientId}: clearance ${list.length ? list.join(',') : 'none'}\n`);
    } catch (err) {
      program.error(`tessera clients clearance: ${(err as Error).message}`);
    } finally {
      await tessera.close();
    }
  });

clients
  .command('purposes <clientId> <codes>')
  .description('which purposes of use a client may declare in its token requests: e.g. TREAT, HPAYMT,HOPERAT, or any')
  .option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)')
  .action(async (clientId: string, codes: string, flags: StoreFlags) => {
    const tessera = await createTessera(config(flags, true), { auditThread: false });
    try {
      const purposes = codes === 'any' ? null : parsePurposeList(codes);
      if (!(await setClientPurposes(tessera.db, clientId, purposes))) throw new Error(`no client ${clientId}`);
      await recordOperatorAction(tessera, 'clients purposes', `client:${clientId}`);
      process.stdout.write(`client ${clientId}: purposes ${purposes ? purposes.join(',') || 'none' : 'any'}\n`);
    } catch (err) {
      program.error(`tessera clients purposes: ${(err as Error).message}`);
    } finally {
      await tessera.close();
    }
  });

const record = program.command('record').description('the longitudinal record (docs/record.md)');
record
  .command('equivalences')
  .description('print the duplicate-test equivalences and look-back windows the CDS Hooks services use (JSON); with --set, replace them from a JSON file')
  .option('--set <file>', 'a JSON array of {id, name, lookbackDays, codes: [{system, code}]}')
  .option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)')
  .action(async (flags: StoreFlags & { set?: string }) => {
    const tessera = await createTessera(config(flags, true), { auditThread: false });
    try {
      if (flags.set) {
        let list: unknown;
        try {
          list = JSON.parse(readFileSync(flags.set, 'utf8'));
        } catch (err) {
          throw new Error(`${flags.set} is not readable JSON: ${(err as Error).message}`);
        }
        await setTestEquivalences(tessera.db, list);
        await recordOperatorAction(tessera, 'record equivalences --set');
      }
      process.stdout.write(`${JSON.stringify(await testEquivalences(tessera.db), null, 2)}\n`);
    } catch (err) {
      program.error(`tessera record equivalences: ${(err as Error).message}`);
    } finally {
      await tessera.close();
    }
  });

const mpi = program.command('mpi').description('master patient index (docs/matching.md)');
mpi
  .command('rebuild')
  .description('learn the match model from the index (from 1,000 source records on), then link every source Patient again with it: index the ones missing, recompute features, re-match records that are alone; expand consents over their person again')
  .option('--no-train', 'keep the model in force: relink only')
  .option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)')
  .action(async (flags: StoreFlags & { train: boolean }) => {
    if (flags.train) {
      // Learned and stored first, in a store opened without the linker: the relinking store opens with it.
      const learning = await createTessera({ ...config(flags, true), mpi: false }, { auditThread: false });
      try {
        process.stdout.write('Learning the match model from the index\n');
        const { learned, before, skipped } = await learnBeforeRebuild(learning.db);
        process.stdout.write(learned ? `${formatModelChange(before, learned)}\nStored as the new model; relinking with it.\n` : `Model kept: ${skipped}.\n`);
      } finally {
        await learning.close();
      }
    }
    const tessera = await createTessera({ ...config(flags, true), mpi: true }, { auditThread: false });
    try {
      const linker = tessera.repo.observerOf(PatientLinker) as PatientLinker;
      const bar = createProgressBar('Rebuilding', 0, 'Patients');
      const summary = await rebuildIndex(tessera.repo, linker, (done, total) => bar.update(done, done, total));
      bar.stop();
      // Consents follow every link the rebuild changes; this also repairs rows expanded before they did.
      const consents = await refreshAllConsents(tessera.repo);
      const [{ n }] = await tessera.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM mpi_enterprise WHERE status = 'active'");
      const rate = Math.round(summary.records / Math.max(summary.seconds, 0.001));
      process.stdout.write(`Re-linked ${summary.records} source records in ${summary.seconds.toFixed(1)} s (${rate} records/s); ${n} enterprise identities; ${consents} consents re-expanded over their person; re-clustering moved ${summary.reclustered} records\n`);
    } finally {
      await tessera.close();
    }
  });
mpi
  .command('train')
  .description('learn the match model from the index: u from random pairs of records, m by EM on candidate pairs (identifier systems each their own), thresholds from the posterior match probability; store it as the new model')
  .option('--pairs <n>', 'most candidate pairs for EM', '200000')
  .option('--target-precision <p>', 'expected share of automatic links that are one person: the auto-link threshold follows from it', '0.999')
  .option('--dry-run', 'print the weights without storing them')
  .option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)')
  .option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)')
  .action(async (flags: StoreFlags & { pairs: string; targetPrecision: string; dryRun?: boolean }) => {
    const maxPairs = Number(flags.pairs);
    if (!Number.isInteger(maxPairs) || maxPairs < 100) {
      program.error(`tessera mpi train: --pairs must be a whole number of at least 100, not "${flags.pairs}"`);
    }
    const targets = { ...DEFAULT_TARGETS, precision: targetPrecision(flags.targetPrecision, 'train') };
    const tessera = await createTessera(config(flags, true), { auditThread: false });
    try {
      const before = (await latestModel(tessera.db)) ?? PRIOR_MODEL;
      const bar = createProgressBar('Candidate pairs', maxPairs, 'pairs');
      const result = await trainFromIndex(tessera.db, before.probabilities, {
        maxPairs,
        targets,
        startSystems: before.identifierSystems,
        onProgress: (stage, n) => stage === 'candidate pairs' && bar.update(n, n),
      });
      bar.stop();
      if (result.pairs < 100) {
        program.error(`tessera mpi train: only ${result.pairs} candidate pairs in the index; load more Patients first`);
      }
      process.stdout.write(`${formatModelChange(before, result)}\n`);
      process.stdout.write(
        `u from ${result.randomPairs} random pairs; m from ${result.pairs} candidate pairs, ${result.iterations} EM iterations; estimated match share among candidates ${(result.matchShare * 100).toFixed(2)}%\n`,
      );
      if (flags.dryRun) {
        process.stdout.write('Dry run: nothing stored.\n');
      } else {
        await saveModel(tessera.db, result);
        process.stdout.write('Stored as the new model; servers use it from their next start. Run `tessera mpi rebuild` to re-match records that are alone.\n');
      }
    } finally {
      await tessera.close();
    }
  });

/** A precision target: a probability strictly between 0.5 and 1. */
function targetPrecision(value: string, command: string): number {
  const p = Number(value);
  if (!(p > 0.5 && p < 1)) program.error(`tessera mpi ${command}: --target-precision must be a number between 0.5 and 1 (exclusive), not "${value}"`);
  return p;
}

mpi
  .command('evaluate')
  .description('measure matching on a labelled sample: load it into a scratch store through the normal write path, print pairwise precision, recall, F1, pairs completeness and review share, write a report for a data steward')
  .requiredOption('--truth <file>', 'labelled sample: CSV with a truth column (truth, person_id or FEBRL rec_id), or FHIR Patients (Bundle or NDJSON) with --truth-system')
  .option('--truth-column <name>', 'CSV column naming the person')
  .option('--truth-system <uri>', 'identifier system of the truth on FHIR Patients (the file is read as FHIR)')
  .option('--report <file>', 'Markdown report: every false link and missed pair with its per-field levels and weights')
  .option('--train', 'then learn a model from the loaded sample (unlabelled, as `tessera mpi train` does), load the sample again with it and report both')
  .option('--target-precision <p>', 'with --train: the precision the learned thresholds aim at', '0.999')
  .option('--pairs <n>', 'with --train: most candidate pairs for EM', '200000')
  .option('--upkeep <records>', "run the model upkeep of `tessera serve` (learn as the index grows, match the review queue's records again) every this many records of the first load; 0: never", '0')
  .option('--data <dir>', "a deployment's data directory: evaluate with its trained model (env TESSERA_DATA)")
  .option('--database-url <url>', "a deployment's PostgreSQL: evaluate with its trained model (env DATABASE_URL)")
  .action(async (flags: StoreFlags & { truth: string; truthColumn?: string; truthSystem?: string; report?: string; train?: boolean; targetPrecision: string; pairs: string; upkeep: string }) => {
    const upkeepEvery = Number(flags.upkeep);
    if (!Number.isInteger(upkeepEvery) || upkeepEvery < 0) return program.error(`tessera mpi evaluate: --upkeep must be a whole number of records, not "${flags.upkeep}"`);
    let sample: LabelledSample;
    try {
      const text = readFileSync(flags.truth, 'utf8');
      sample = flags.truthSystem ? labelledFromFhir(text, flags.truthSystem) : labelledFromCsv(text, flags.truthColumn);
    } catch (err) {
      return program.error(`tessera mpi evaluate: ${flags.truth}: ${(err as Error).message}`);
    }
    const targets = { ...DEFAULT_TARGETS, precision: targetPrecision(flags.targetPrecision, 'evaluate') };
    const deployed = flags.data || flags.databaseUrl || process.env.TESSERA_DATA || process.env.DATABASE_URL;
    let model: StoredModel | undefined;
    if (deployed) {
      const source = await createTessera({ ...config(flags, true), mpi: false }, { auditThread: false });
      model = await latestModel(source.db);
      await source.close();
    }
    /** One load of the sample into a scratch SQLite store, deleted afterwards. */
    const inScratch = async (label: string, stored: Parameters<typeof saveModel>[1] | undefined, train: boolean, upkeep = 0) => {
      const scratch = mkdtempSync(join(tmpdir(), 'tessera-evaluate-'));
      try {
        process.stdout.write(`Loading ${sample.records.length} records one by one (${label})\n`);
        const scratchConfig = { ...configFromEnv({ dataDir: scratch, logLevel: 'warn' }), databaseUrl: undefined, schema: undefined };
        const result = await evaluateSample(scratchConfig, sample.records, { model: stored, train: train ? { maxPairs: Number(flags.pairs), targets } : undefined, upkeepEvery: upkeep });
        process.stdout.write(`${qualitySummary(result.quality)}\n`);
        if (result.refused.length) process.stdout.write(`${result.refused.length} records refused by the store (listed in the report)\n`);
        return result;
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    };
    const firstLabel = `${model ? `trained model ${model.version}` : 'hand-set priors'}${upkeepEvery ? `, model upkeep every ${upkeepEvery} records` : ''}`;
    const first = await inScratch(firstLabel, model, !!flags.train, upkeepEvery);
    const sections = [{ title: `Matching quality on ${basename(flags.truth)} (${firstLabel})`, result: first }];
    if (first.trained) {
      process.stdout.write(`\nModel learned from the sample (unlabelled):\n${formatModelChange(first.model, first.trained)}\n`);
      process.stdout.write(`estimated match share among candidates ${(first.trained.matchShare * 100).toFixed(2)}%\n\n`);
      const second = await inScratch('the model learned from it', first.trained, false);
      sections.push({ title: `Matching quality on ${basename(flags.truth)} (model learned from the sample)`, result: second });
    }
    if (flags.report) {
      const notes = [...sample.notes, ...first.refused.map((r) => `refused: ${r}`)];
      writeFileSync(flags.report, sections.map((s, i) => qualityReport(s.title, s.result.quality, i === sections.length - 1 ? notes : [])).join('\n'));
      process.stdout.write(`Report: ${flags.report}\n`);
    }
  });

registerInterfaceCommands(program, (flags) => config(flags, true));
registerAuditCommands(program, (flags) => config(flags, true));
registerUserCommands(program, clients, (flags) => config(flags, true));
registerConsentCommands(program, (flags) => config(flags, true));
registerCodeCommands(program, (flags) => config(flags, true));
registerNotifyCommands(program, (flags) => config(flags, true));
registerLabelCommands(program, (flags) => config(flags, true));

await program.parseAsync(process.argv);
