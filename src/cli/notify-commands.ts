import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { FhirError } from '../fhir/outcome.js';
import { redrive } from '../notify/delivery-worker.js';
import { importRoster, rosterCsv } from '../notify/rosters.js';
import type { TesseraConfig } from '../server/config.js';
import { recordOperatorAction } from './operator-audit.js';
import { storeOptions, withStore, type StoreFlags } from './store-command.js';

function failure(err: unknown): string {
  if (err instanceof FhirError) return `${err.status}: ${err.message}`;
  return (err as Error).message;
}

/** `tessera rosters import` and `tessera subscriptions list|redrive` (docs/notifications.md). */
export function registerNotifyCommands(program: Command, config: (flags: StoreFlags) => TesseraConfig): void {
  const rosters = program.command('rosters').description("participants' patient rosters (FHIR Groups) for notifications");
  storeOptions(
    rosters
      .command('import <csv>')
      .description("replace a participant's roster with the MRNs of a CSV file (a column named mrn, else the first; header optional)")
      .requiredOption('--participant <id>', 'the participant whose patients these are (its MRN system names them)'),
  ).action((file: string, flags: StoreFlags & { participant: string }) =>
    withStore(config(flags), async (t) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as Error).message}`);
      }
      const { groupId, members } = await importRoster(t.repo, flags.participant, rosterCsv(text));
      await recordOperatorAction(t, 'rosters import', `Group/${groupId}`);
      process.stdout.write(`Group/${groupId}: ${members} members\n`);
    }).catch((err) => program.error(`tessera rosters import: ${failure(err)}`)),
  );

  const subscriptions = program.command('subscriptions').description('notification subscriptions: status and dead letters');
  storeOptions(subscriptions.command('list').description('each subscription: channel, events, backlog, dead letters, last error')).action((flags: StoreFlags) =>
    withStore(config(flags), async (t) => {
      const rows = await t.db.query<{ id: string; topic: string; channel_type: string; notified_count: number; last_error: string | null; pending: number; dead: number }>(
        `SELECT s.id, s.topic, s.channel_type, s.notified_count, s.last_error,
           (SELECT COUNT(*) FROM notify_delivery d WHERE d.subscription_id = s.id AND d.status = 'pending') AS pending,
           (SELECT COUNT(*) FROM notify_delivery d WHERE d.subscription_id = s.id AND d.status = 'dead') AS dead
         FROM notify_subscription s WHERE s.active = 1 ORDER BY s.id`,
      );
      for (const r of rows) process.stdout.write(`${r.id}\t${r.topic}\t${r.channel_type}\tevents ${r.notified_count}\tbacklog ${r.pending}\tdead ${r.dead}${r.last_error ? `\tlast error: ${r.last_error}` : ''}\n`);
    }).catch((err) => program.error(`tessera subscriptions list: ${failure(err)}`)),
  );
  storeOptions(subscriptions.command('redrive [subscriptionId]').description("put dead letters back in line for delivery (one subscription's, or all)")).action((id: string | undefined, flags: StoreFlags) =>
    withStore(config(flags), async (t) => {
      const n = await redrive(t.repo, id);
      await recordOperatorAction(t, 'subscriptions redrive', id ? `Subscription/${id}` : undefined);
      process.stdout.write(`${n} dead letters put back for delivery\n`);
    }).catch((err) => program.error(`tessera subscriptions redrive: ${failure(err)}`)),
  );
}
