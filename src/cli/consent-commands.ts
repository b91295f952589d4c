import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { Bundle, Consent } from '@medplum/fhirtypes';
import { responseBody } from '../engine/responses.js';
import type { TesseraConfig } from '../server/config.js';
import { recordOperatorAction } from './operator-audit.js';
import { asOperator, failure } from './operator-engine.js';
import { storeOptions, withStore, type StoreFlags } from './store-command.js';

/**
 * `tessera consents add|revoke|list`: patients' consents recorded by an operator (a signed paper form, a
 * registration desk), through the same write path and rules as the API (docs/governance.md section 4).
 */
export function registerConsentCommands(program: Command, config: (flags: StoreFlags) => TesseraConfig): void {
  const consents = program.command('consents').description("patients' privacy consents (docs/governance.md)");
  const run = (name: string, fn: () => Promise<void>) => fn().catch((err) => program.error(`tessera consents ${name}: ${failure(err)}`));
  storeOptions(consents.command('add <file>').description('record a FHIR R4 Consent (JSON file); prints its id')).action((file: string, flags: StoreFlags) =>
    run('add', () =>
      withStore(config(flags), async (t) => {
        let consent: Consent;
        try {
          consent = JSON.parse(readFileSync(file, 'utf8')) as Consent;
        } catch (err) {
          throw new Error(`cannot read ${file}: ${(err as Error).message}`);
        }
        if (consent?.resourceType !== 'Consent') throw new Error(`${file} holds a ${consent?.resourceType ?? 'non-FHIR document'}, not a Consent`);
        const res = await asOperator(t, 'POST', 'Consent', consent);
        const id = (res.body as Consent).id as string;
        await recordOperatorAction(t, 'consents add', `Consent/${id}`);
        process.stdout.write(`Consent/${id} recorded for ${consent.patient?.reference}\n`);
      }),
    ),
  );
  storeOptions(consents.command('revoke <id>').description('revoke a Consent (status inactive; its history is kept); applies from the next request')).action((id: string, flags: StoreFlags) =>
    run('revoke', () =>
      withStore(config(flags), async (t) => {
        const current = (await asOperator(t, 'GET', `Consent/${id}`)).body as Consent;
        await asOperator(t, 'PUT', `Consent/${id}`, { ...current, status: 'inactive' });
        await recordOperatorAction(t, 'consents revoke', `Consent/${id}`);
        process.stdout.write(`Consent/${id} revoked\n`);
      }),
    ),
  );
  storeOptions(consents.command('list').description("a patient's consents").requiredOption('--patient <id>', 'Patient id')).action((flags: StoreFlags & { patient: string }) =>
    run('list', () =>
      withStore(config(flags), async (t) => {
        const res = await asOperator(t, 'GET', `Consent?patient=Patient/${encodeURIComponent(flags.patient)}&_count=1000`);
        const bundle = responseBody(res) as Bundle<Consent>;
        const found = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Consent => r?.resourceType === 'Consent');
        await recordOperatorAction(t, 'consents list', `Patient/${flags.patient}`);
        for (const c of found) {
          process.stdout.write(`Consent/${c.id}  ${c.status}  ${c.provision?.type ?? '-'}  ${c.dateTime ?? ''}\n`);
        }
        process.stdout.write(`${found.length} consent(s)\n`);
      }),
    ),
  );
}
