import type { Command } from 'commander';
import { relabelStored } from '../labels/relabel.js';
import type { TesseraConfig } from '../server/config.js';
import { createProgressBar } from './progress.js';
import { recordOperatorAction } from './operator-audit.js';
import { asOperator, failure } from './operator-engine.js';
import { storeOptions, withStore, type StoreFlags } from './store-command.js';

/** `tessera labels relabel`: stored resources labelled as every write now labels them (docs/governance.md). */
export function registerLabelCommands(program: Command, config: (flags: StoreFlags) => TesseraConfig): void {
  const labels = program.command('labels').description('security labels of stored data (docs/governance.md)');
  storeOptions(
    labels
      .command('relabel')
      .description("label what was stored before the current labelling: each resource from its codes, a document's parts as its entries; each resource changed is a new version")
      .option('--dry-run', 'list what would change, write nothing'),
  ).action((flags: StoreFlags & { dryRun?: boolean }) =>
    withStore(config(flags), async (t) => {
      const bar = createProgressBar('Relabelling', 0, 'resources');
      const result = await relabelStored(t.repo, async (resource) => void (await asOperator(t, 'PUT', `${resource.resourceType}/${resource.id}`, resource)), {
        dryRun: flags.dryRun,
        onProgress: (seen) => bar.update(seen, seen),
      });
      bar.stop();
      await recordOperatorAction(t, flags.dryRun ? 'labels relabel --dry-run' : 'labels relabel');
      for (const reference of result.relabelled) process.stdout.write(`${flags.dryRun ? 'would relabel' : 'relabelled'} ${reference}\n`);
      process.stdout.write(`${result.seen} resource(s) looked at, ${result.relabelled.length} ${flags.dryRun ? 'would get' : 'got'} new labels${flags.dryRun ? '' : ' (a new version each)'}\n`);
    }).catch((err) => program.error(`tessera labels relabel: ${failure(err)}`)),
  );
}
