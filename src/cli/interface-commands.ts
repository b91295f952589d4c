import type { Command } from 'commander';
import { storeOptions, withStore as withStoreOf, type StoreFlags } from './store-command.js';
import { readFileSync } from 'node:fs';
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { replayMessage, ReplayNotSupportedError } from '../ingest/message-replay.js';
import { MESSAGE_STATUSES, MessageLog, type MessageStatus } from '../messages/message-log.js';
import { addParticipant, listParticipants, participantById } from '../participants/participants.js';
import { participantTimeZone, setParticipantTimeZone } from '../participants/time-zone.js';
import type { TesseraConfig } from '../server/config.js';
import type { Tessera } from '../server/tessera.js';
import { recordOperatorAction } from './operator-audit.js';

export type { StoreFlags };


/** `tessera participants add|list|time-zone` and `tessera messages list|show|replay` (docs/interfaces.md). */
export function registerInterfaceCommands(program: Command, config: (flags: StoreFlags) => TesseraConfig): void {
  const withStore = (flags: StoreFlags, fn: (t: Tessera) => Promise<void>) => withStoreOf(config(flags), fn);

  const participants = program.command('participants').description('organisations that send data to the exchange');
  storeOptions(
    participants
      .command('add')
      .description('register a participant and print it (and its OAuth client, with --scope) as JSON')
      .requiredOption('--name <name>', 'organisation name')
      .requiredOption('--mrn-system <uri>', "assigning authority of its patients' record numbers, e.g. urn:oid:1.2.3.4")
      .option('--hl7-facility <id>', 'MSH-4 sending facility of its HL7 v2 messages')
      .option('--hl7-application <id>', 'MSH-3 sending application (with or instead of the facility)')
      .option('--scope <scopes>', 'create an OAuth client with these SMART scopes for its FHIR traffic'),
  ).action(async (flags: StoreFlags & { name: string; mrnSystem: string; hl7Facility?: string; hl7Application?: string; scope?: string }) => {
    await withStore(flags, async (t) => {
      try {
        const created = await addParticipant(t.repo, { name: flags.name, mrnSystem: flags.mrnSystem, hl7Facility: flags.hl7Facility, hl7Application: flags.hl7Application, scope: flags.scope });
        await recordOperatorAction(t, 'participants add', `participant:${created.participant.id}`);
        process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
      } catch (err) {
        program.error(`tessera participants add: ${(err as Error).message}`);
      }
    });
  });
  storeOptions(
    participants
      .command('time-zone <participant> [zone]')
      .description('print, or set with an IANA zone name (e.g. America/New_York; "" clears), the zone of HL7 v2 times the participant sends without a UTC offset'),
  ).action(async (id: string, zone: string | undefined, flags: StoreFlags) => {
    await withStore(flags, async (t) => {
      if (!(await participantById(t.repo, id))) program.error(`tessera participants time-zone: no participant ${id} (tessera participants list)`);
      try {
        if (zone !== undefined) {
          await setParticipantTimeZone(t.db, id, zone);
          await recordOperatorAction(t, 'participants time-zone', `participant:${id}`);
        }
        process.stdout.write(`${(await participantTimeZone(t.db, id)) ?? '(none: times without an offset, in messages whose MSH-7 has none, are stored as UTC with a warning)'}\n`);
      } catch (err) {
        program.error(`tessera participants time-zone: ${(err as Error).message}`);
      }
    });
  });
  storeOptions(participants.command('list').description('list participants')).action(async (flags: StoreFlags) => {
    await withStore(flags, async (t) => {
      const rows = await listParticipants(t.repo);
      for (const p of rows) {
        const sender = [p.hl7Facility, p.hl7Application].filter(Boolean).join(' / ') || '-';
        process.stdout.write(`${p.id}  ${p.name}  mrn=${p.mrnSystem}  hl7=${sender}${p.clientId ? `  client=${p.clientId}` : ''}${p.active ? '' : '  (inactive)'}\n`);
      }
      process.stdout.write(`${rows.length} participant(s)\n`);
    });
  });

  program
    .command('send-hl7 <files...>')
    .description('send HL7 v2 message files over MLLP (one message per file) and print each ACK')
    .option('--host <host>', 'MLLP host', '127.0.0.1')
    .option('--port <port>', 'MLLP port', '2575')
    .action(async (files: string[], flags: { host: string; port: string }) => {
      const client = new Hl7Client({ host: flags.host, port: Number(flags.port), keepAlive: true });
      try {
        for (const file of files) {
          const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '').trim().split(/\r\n|\r|\n/).join('\r');
          const ack = await client.sendAndWait(Hl7Message.parse(text), { timeoutMs: 30_000 });
          process.stdout.write(`${file}\n${ack.toString().replace(/\r/g, '\n')}\n`);
          if (ack.getSegment('MSA')?.getField(1)?.toString() !== 'AA') process.exitCode = 1;
        }
      } catch (err) {
        program.error(`tessera send-hl7: ${(err as Error).message}`);
      } finally {
        await client.close();
      }
    });

  const messages = program.command('messages').description('the inbound message log and error queue');
  storeOptions(
    messages
      .command('list')
      .description('newest first')
      .option('--status <status>', `one of ${MESSAGE_STATUSES.join(', ')} (failed: the error queue)`)
      .option('--type <type>', 'message type, e.g. ADT or ADT^A01')
      .option('--sender <participantId>', 'participant id')
      .option('--patient <ref>', 'Patient/{id}')
      .option('--limit <n>', 'most messages to list', '50'),
  ).action(async (flags: StoreFlags & { status?: string; type?: string; sender?: string; patient?: string; limit: string }) => {
    if (flags.status && !MESSAGE_STATUSES.includes(flags.status as MessageStatus)) {
      program.error(`tessera messages list: --status must be one of ${MESSAGE_STATUSES.join(', ')}, not "${flags.status}"`);
    }
    await withStore(flags, async (t) => {
      const rows = await new MessageLog(t.db).list({ status: flags.status as MessageStatus, type: flags.type, participantId: flags.sender, patient: flags.patient, limit: Number(flags.limit) || 50 });
      for (const m of rows) {
        process.stdout.write(`${m.id}  ${new Date(m.receivedAt).toISOString()}  ${m.status.padEnd(9)}  ${(m.messageType ?? '?').padEnd(8)}  ${m.controlId ?? '-'}${m.error ? `  ${m.error}` : ''}\n`);
      }
      process.stdout.write(`${rows.length} message(s)\n`);
    });
  });
  storeOptions(messages.command('show <id>').description('one message: status, outcome and the raw text')).action(async (id: string, flags: StoreFlags) => {
    await withStore(flags, async (t) => {
      const m = await new MessageLog(t.db).get(id);
      if (!m) program.error(`tessera messages show: no message ${id}`);
      const { raw, ...rest } = m as NonNullable<typeof m>;
      await recordOperatorAction(t, 'messages show', `message:${id}`);
      process.stdout.write(`${JSON.stringify({ ...rest, receivedAt: new Date(rest.receivedAt).toISOString() }, null, 2)}\n--- raw ---\n${raw.replace(/\r/g, '\n')}\n`);
    });
  });
  storeOptions(messages.command('replay <id>').description('run a logged message through the current mappings again')).action(async (id: string, flags: StoreFlags) => {
    await withStore(flags, async (t) => {
      let result;
      try {
        result = await replayMessage(t.repo, { hl7v2: t.intake, ccda: t.ccda }, id);
      } catch (err) {
        if (!(err instanceof ReplayNotSupportedError)) throw err;
        program.error(`tessera messages replay: ${err.message}`);
      }
      if (!result) program.error(`tessera messages replay: no message ${id}`);
      const m = await new MessageLog(t.db).get(id);
      await recordOperatorAction(t, 'messages replay', `message:${id}`);
      process.stdout.write(`${result?.ackCode ? `${result.ackCode} ` : ''}${m?.status}${m?.error ? `: ${m.error}` : ''}\n`);
      if (m?.status === 'failed') process.exitCode = 1;
    });
  });
}
