import type { Consent, Patient, Resource } from '@medplum/fhirtypes';
import { personOf, personRecords } from '../engine/request-policy.js';
import { enterpriseLock } from '../mpi/enterprises.js';
import { linkedSourceIds } from '../mpi/golden-record.js';
import { isGolden } from '../mpi/source-identity.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { consentPatient, consentRules, consentWarnings, type ConsentRule } from './consent-rules.js';

/** ',A,B,' (see the consent_rule migration), or NULL for "any". */
export function listColumn(values: readonly string[] | undefined): string | null {
  return values?.length ? `,${values.join(',')},` : null;
}

/** Ids per IN list. */
const CHUNK = 500;

/**
 * Keeps consent_rule in step with Consent resources and with the master patient index, inside the
 * transaction that writes them: a new or changed Consent applies to the next request, a deleted or
 * inactive one stops applying. A consent is the person's: its rows are written for every record the
 * index links to the patient named (personRecords), and rewritten whenever that set changes.
 *
 * A person's set of records is read from golden Patient records only (their `seealso` links, and
 * `replaced-by` for a merged-away one), and every change of identity (a new record linked, a steward's
 * link, unlink, merge or unmerge, `tessera mpi rebuild`, a source record deleted) rewrites or deletes the
 * golden records of the enterprises it changes, in its own transaction. So this observer also watches
 * golden Patients: the consents to expand again are those with a row on the golden record or on a record
 * it now links. That finds both sides of every change: a consent whose person lost a record has a row on
 * that person's golden record (every expansion includes it), a consent whose record moved to another
 * person has a row on that record, now linked by the other golden record. Between two golden writes of
 * one change (an unlink rewrites the old enterprise, then writes the new one) a consent may be expanded
 * over a half-made person; the last write of the change expands it again, before the commit.
 *
 * The rows are stored, not derived at query time, because the policy's condition runs as a correlated
 * subquery per candidate row (privacy-restriction.ts: compartment JOIN consent_rule on patient_id, one
 * index lookup); deriving the person there would add the golden-record joins (sp_reference, the golden
 * tag, replaced-by chains) to every row of every restricted search, to save work that happens only when
 * a Consent or an identity changes.
 */
export class ConsentObserver implements WriteObserver {
  readonly types = new Set(['Consent', 'Patient']);

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    const changed: string[] = [];
    for (const resource of resources) {
      if (resource.resourceType === 'Consent') {
        await this.expand(repo, resource);
      } else if (resource.resourceType === 'Patient' && isGolden(resource)) {
        // A source record's own write changes no person: the index rewrites the golden records it moves.
        changed.push(resource.id as string, ...linkedSourceIds(resource as Patient));
      }
    }
    if (changed.length) {
      await refreshConsentsCovering(repo, changed);
    }
  }

  async deleted(repo: Repository, type: string, id: string): Promise<void> {
    if (type === 'Consent') {
      await repo.sql.run('DELETE FROM consent_rule WHERE consent_id = ?', [id]);
    } else {
      // A golden record deleted (its enterprise lost its last record) or a record gone: the consents
      // expanded over it are expanded again without it.
      await refreshConsentsCovering(repo, [id]);
    }
  }

  private async expand(repo: Repository, consent: Consent): Promise<void> {
    const rules = consentRules(consent);
    // Stored as sent, but the caller learns what of it has no effect (a privacy officer must not believe
    // a patient protected by a Consent that does nothing).
    for (const warning of consentWarnings(consent)) repo.warn(warning, `Consent/${consent.id}`);
    const patient = consentPatient(consent);
    // Locked before the old rows are touched: an identity change in progress holds its enterprises' locks
    // and then rewrites this consent's rows itself.
    const records = rules.length && patient ? await lockedPersonRecords(repo, patient) : [];
    await writeRows(repo, consent.id as string, rules, records);
  }
}

/**
 * The person's records, read under the locks of their enterprises (enterpriseLock). A concurrent change of
 * the person either committed before the locks were granted (and is read here) or waits for this
 * transaction and then finds this consent's rows to expand again; without the locks, on PostgreSQL, each
 * could miss the other's uncommitted work. A person whose enterprises changed while waiting is read again
 * under the new ones' locks too.
 */
async function lockedPersonRecords(repo: Repository, patientId: string): Promise<string[]> {
  const locked = new Set<string>();
  for (;;) {
    const person = await personOf(repo, patientId);
    const missing = person.enterprises.filter((e) => !locked.has(e)).sort();
    if (!missing.length) {
      return person.records;
    }
    await repo.sql.lock(...missing.map(enterpriseLock));
    missing.forEach((e) => locked.add(e));
  }
}

/** Replaces a consent's rows: one per rule, data kind and record. */
async function writeRows(repo: Repository, consentId: string, rules: ConsentRule[], records: string[]): Promise<void> {
  await repo.sql.run('DELETE FROM consent_rule WHERE consent_id = ?', [consentId]);
  const rows = records.flatMap((record) =>
    rules.flatMap((rule) =>
      (rule.kinds ?? [null]).map((kind) => [
        consentId,
        record,
        rule.effect,
        kind,
        listColumn(rule.actors),
        listColumn(rule.purposes),
        listColumn(rule.actorsExcept),
        listColumn(rule.purposesExcept),
        rule.start ?? null,
        rule.end ?? null,
      ]),
    ),
  );
  if (rows.length) {
    await repo.sql.insertRows('consent_rule', ['consent_id', 'patient_id', 'effect', 'kind', 'actors', 'purposes', 'actors_except', 'purposes_except', 'start_ms', 'end_ms'], rows);
  }
}

/**
 * Expands again, over the person as the index has them now, every consent with a row on one of these
 * records. A consent whose set of records did not change keeps its rows untouched.
 */
export async function refreshConsentsCovering(repo: Repository, records: string[]): Promise<void> {
  const unique = [...new Set(records)];
  const consentIds = new Set<string>();
  for (let i = 0; i < unique.length; i += CHUNK) {
    const chunk = unique.slice(i, i + CHUNK);
    const rows = await repo.sql.query<{ consent_id: string }>(`SELECT DISTINCT consent_id FROM consent_rule WHERE patient_id IN (${chunk.map(() => '?').join(', ')})`, chunk);
    rows.forEach((r) => consentIds.add(r.consent_id));
  }
  // Called as the index changes a person, under that change's enterprise locks: none to take here.
  await refreshConsents(repo, [...consentIds].sort(), false);
}

/**
 * Expands these consents again (see refreshConsentsCovering); rows of a consent no longer stored go.
 * `lock`: read each person under their enterprises' locks (work that is not itself an identity change).
 */
async function refreshConsents(repo: Repository, consentIds: string[], lock: boolean): Promise<void> {
  if (!consentIds.length) {
    return;
  }
  const consents = new Map(((await repo.readMany('Consent', consentIds)) as Consent[]).map((c) => [c.id as string, c]));
  for (const id of consentIds) {
    const consent = consents.get(id);
    const rules = consent ? consentRules(consent) : [];
    const patient = consent && consentPatient(consent);
    const records = rules.length && patient ? await (lock ? lockedPersonRecords(repo, patient) : personRecords(repo, patient)) : [];
    const current = await repo.sql.query<{ patient_id: string }>('SELECT DISTINCT patient_id FROM consent_rule WHERE consent_id = ?', [id]);
    if (current.length === new Set(records).size && current.every((r) => records.includes(r.patient_id))) {
      continue;
    }
    await writeRows(repo, id, rules, records);
  }
}

/**
 * Expands every stored consent again, a chunk per transaction: for a store whose rows were written before
 * consents followed identity changes (`tessera mpi rebuild` runs it). Returns how many it checked.
 */
export async function refreshAllConsents(repo: Repository): Promise<number> {
  let after = '';
  let checked = 0;
  for (;;) {
    const rows = await repo.sql.query<{ consent_id: string }>('SELECT DISTINCT consent_id FROM consent_rule WHERE consent_id > ? ORDER BY consent_id LIMIT ?', [after, CHUNK]);
    if (!rows.length) {
      return checked;
    }
    after = rows[rows.length - 1].consent_id;
    await repo.transaction((tx) => refreshConsents(tx, rows.map((r) => r.consent_id), true));
    checked += rows.length;
  }
}
