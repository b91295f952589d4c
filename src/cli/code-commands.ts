import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { ConceptMap } from '@medplum/fhirtypes';
import { backfillAll } from '../codes/backfill.js';
import { listUnmapped } from '../codes/code-map-store.js';
import { emptyConceptMap, parseMappingCsv, participantConceptMapId, systemUri, withMappings, type CodeMapping } from '../codes/participant-concept-map.js';
import { FhirError } from '../fhir/outcome.js';
import { participantById, type Participant } from '../participants/participants.js';
import type { TesseraConfig } from '../server/config.js';
import type { Tessera } from '../server/tessera.js';
import { createProgressBar } from './progress.js';
import { recordOperatorAction } from './operator-audit.js';
import { asOperator, failure } from './operator-engine.js';
import { storeOptions, withStore, type StoreFlags } from './store-command.js';

async function participantNamed(t: Tessera, id: string): Promise<Participant> {
  const participant = await participantById(t.repo, id);
  if (!participant) throw new Error(`no participant ${id} (tessera participants list)`);
  return participant;
}

/**
 * Adds mappings to the participant's ConceptMap through the engine (policy and audit as for any write);
 * the write queues the codes whose mapping changed, and the command then adds the standard codings to
 * what already arrived with them, in batches (src/codes/backfill.ts) before it ends.
 */
async function addMappings(t: Tessera, participant: Participant, mappings: CodeMapping[]): Promise<{ map: ConceptMap; backfilled: number }> {
  const id = participantConceptMapId(participant.id);
  let current: ConceptMap;
  try {
    current = (await asOperator(t, 'GET', `ConceptMap/${id}`)).body as ConceptMap;
  } catch (err) {
    if (!(err instanceof FhirError) || err.status !== 404) throw err;
    current = emptyConceptMap(participant);
  }
  const res = await asOperator(t, 'PUT', `ConceptMap/${id}`, withMappings(current, mappings));
  return { map: res.body as ConceptMap, backfilled: await t.codeBackfill.drain() };
}

/** `tessera codes unmapped|map|import|backfill`: participants' local codes (docs/interfaces.md section 2d). */
export function registerCodeCommands(program: Command, config: (flags: StoreFlags) => TesseraConfig): void {
  const codes = program.command('codes').description("participants' local codes and their mappings to LOINC, SNOMED CT, RxNorm, UCUM");
  const run = (name: string, fn: () => Promise<void>) => fn().catch((err) => program.error(`tessera codes ${name}: ${failure(err)}`));

  storeOptions(
    codes
      .command('unmapped')
      .description('the worklist: local codes that arrived with no standard coding and no mapping, the most frequent first')
      .option('--participant <id>', 'one participant only')
      .option('--limit <n>', 'at most this many', '50'),
  ).action((flags: StoreFlags & { participant?: string; limit: string }) =>
    run('unmapped', () =>
      withStore(config(flags), async (t) => {
        const limit = Number(flags.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit must be a positive whole number, not "${flags.limit}"`);
        if (flags.participant) await participantNamed(t, flags.participant);
        const entries = await listUnmapped(t.db, flags.participant, limit);
        await recordOperatorAction(t, 'codes unmapped', flags.participant ? `participant:${flags.participant}` : undefined);
        for (const e of entries) {
          process.stdout.write(`${e.occurrences}\t${e.system || '(no system)'}|${e.code}\t${e.display ?? ''}\t${e.element}\tfirst ${e.firstSeen}\tlast ${e.lastSeen}${flags.participant ? '' : `\tparticipant ${e.participantId}`}${e.sampleMessage ? `\tmessage ${e.sampleMessage}` : ''}\n`);
        }
        process.stdout.write(`${entries.length} unmapped code(s)\n`);
      }),
    ),
  );

  storeOptions(
    codes
      .command('map')
      .description("map one of a participant's local codes to a standard code; what already arrived with it gets the standard coding too")
      .requiredOption('--participant <id>', 'the participant whose code it is')
      .requiredOption('--code <code>', 'the local code')
      .option('--system <system>', 'its code system as the worklist shows it (a URI, or an HL7 v2 name such as L or 99LAB); none: a code or unit sent without one', '')
      .requiredOption('--to <system|code>', 'the standard code, e.g. LN|2345-7, SCT|91936005, RXNORM|197361, UCUM|mg/dL')
      .option('--display <text>', "the standard code's display"),
  ).action((flags: StoreFlags & { participant: string; code: string; system: string; to: string; display?: string }) =>
    run('map', () =>
      withStore(config(flags), async (t) => {
        const bar = flags.to.indexOf('|');
        if (bar <= 0 || bar === flags.to.length - 1) throw new Error(`--to must be SYSTEM|CODE, not "${flags.to}"`);
        const participant = await participantNamed(t, flags.participant);
        const mapping = { sourceSystem: flags.system ? systemUri(flags.system) : '', sourceCode: flags.code, targetSystem: systemUri(flags.to.slice(0, bar)), targetCode: flags.to.slice(bar + 1), targetDisplay: flags.display };
        const { map, backfilled } = await addMappings(t, participant, [mapping]);
        await recordOperatorAction(t, 'codes map', `ConceptMap/${map.id}`);
        process.stdout.write(`${mapping.sourceSystem || '(no system)'}|${mapping.sourceCode} -> ${mapping.targetSystem}|${mapping.targetCode} (ConceptMap/${map.id} version ${map.meta?.versionId}); ${backfilled} stored resource(s) updated\n`);
      }),
    ),
  );

  storeOptions(
    codes
      .command('import <file>')
      .description('add the mappings of a CSV table: source_system,source_code,target_system,target_code[,target_display]')
      .requiredOption('--participant <id>', 'the participant whose codes they are'),
  ).action((file: string, flags: StoreFlags & { participant: string }) =>
    run('import', () =>
      withStore(config(flags), async (t) => {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (err) {
          throw new Error(`cannot read ${file}: ${(err as Error).message}`);
        }
        let mappings: CodeMapping[];
        try {
          mappings = parseMappingCsv(text);
        } catch (err) {
          throw new Error(`${file} ${(err as Error).message}`);
        }
        if (!mappings.length) throw new Error(`${file} holds no mappings`);
        const participant = await participantNamed(t, flags.participant);
        const { map, backfilled } = await addMappings(t, participant, mappings);
        await recordOperatorAction(t, 'codes import', `ConceptMap/${map.id}`);
        process.stdout.write(`${mappings.length} mapping(s) from ${file} (ConceptMap/${map.id} version ${map.meta?.versionId}); ${backfilled} stored resource(s) updated\n`);
      }),
    ),
  );

  storeOptions(
    codes
      .command('backfill')
      .description('apply the current mappings to every stored resource (what a mapping change applies by itself; for a check, or maps changed before this version); each one changed is a new version')
      .option('--participant <id>', 'one participant only'),
  ).action((flags: StoreFlags & { participant?: string }) =>
    run('backfill', () =>
      withStore(config(flags), async (t) => {
        if (flags.participant) await participantNamed(t, flags.participant);
        await t.codeBackfill.drain();
        const bar = createProgressBar('Backfilling', 0, 'resources');
        const result = await backfillAll(t.repo, flags.participant, (seen) => bar.update(seen, seen));
        bar.stop();
        await recordOperatorAction(t, 'codes backfill', flags.participant ? `participant:${flags.participant}` : undefined);
        process.stdout.write(`${result.seen} resource(s) looked at, ${result.updated} given standard codings (a new version each)\n`);
      }),
    ),
  );
}
