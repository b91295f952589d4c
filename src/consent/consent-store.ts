import type { Consent, Resource } from '@medplum/fhirtypes';
import { personRecords } from '../engine/request-policy.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { consentPatient, consentRules } from './consent-rules.js';

/** ',A,B,' (see the consent_rule migration), or NULL for "any". */
export function listColumn(values: readonly string[] | undefined): string | null {
  return values?.length ? `,${values.join(',')},` : null;
}

/**
 * Keeps consent_rule in step with Consent resources, inside the transaction that writes them: a new or
 * changed Consent applies to the next request, a deleted or inactive one stops applying. A consent is the
 * person's: its rows are written for every record the master patient index links to the patient named.
 */
export class ConsentObserver implements WriteObserver {
  readonly types = new Set(['Consent']);

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    for (const consent of resources as Consent[]) {
      await repo.sql.run('DELETE FROM consent_rule WHERE consent_id = ?', [consent.id as string]);
      const rules = consentRules(consent);
      const patient = consentPatient(consent);
      if (!rules.length || !patient) continue;
      const records = await personRecords(repo, patient);
      for (const record of records) {
        for (const rule of rules) {
          for (const kind of rule.kinds ?? [null]) {
            await repo.sql.run(
              `INSERT INTO consent_rule (consent_id, patient_id, effect, kind, actors, purposes, actors_except, purposes_except, start_ms, end_ms)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
              [consent.id as string, record, rule.effect, kind, listColumn(rule.actors), listColumn(rule.purposes), listColumn(rule.actorsExcept), listColumn(rule.purposesExcept), rule.start ?? null, rule.end ?? null],
            );
          }
        }
      }
    }
  }

  async deleted(repo: Repository, _type: string, id: string): Promise<void> {
    await repo.sql.run('DELETE FROM consent_rule WHERE consent_id = ?', [id]);
  }
}
