import type { Encounter, Identifier, Organization, Patient, Resource } from '@medplum/fhirtypes';
import { factProvenance, factResource, mergeRecords, sourceFact, type MergedFact, type SourceRecord } from '../../record/merged-record.js';
import { messageIdOf, participantsOfMessages } from '../../record/source-participants.js';
import type { Repository } from '../../store/repository.js';
import type { FhirRequest } from '../fhir-request.js';
import { mergeInputKey, mergedViewCacheOf } from './merged-view-cache.js';
import { closureRecord } from './merged-closure.js';
import { reachableRecord, withContent, type PatientRecord, type Person, type RecordEntry } from './patient-record.js';

/** The person's merged record as the caller may read it. */
export interface MergedView {
  focal: Patient;
  facts: MergedFact[];
  /** Each fact as a FHIR resource (same order as facts). */
  resources: Resource[];
  /** What the facts reference but that is not a fact (practitioners, organisations...), as readable entries. */
  referenced: RecordEntry[];
}

/** Types whose merge reads what their records reference: an Encounter's organisation, by its identifier. */
const MERGE_READS_REFERENCES = new Set(['Encounter']);

/** What the memo holds: the view apart from the focal Patient, and the messages whose participants it names. */
interface Memo {
  view: Omit<MergedView, 'focal'>;
  messageIds: string[];
  participants: string;
}

/**
 * Merges, at read time, the source records of the person the caller may read (decision 0020): the
 * merged view is always consistent with the access policy and with the identity links of the master
 * patient index, and re-derived by construction when a source, a link or a rule changes. The records the
 * caller may read are listed first without their content (type, id, version); when exactly that list
 * was merged before, the memo's result is used (decision 0025), else the content is read and merged.
 * With `types`, only the facts of those types (records of one type merge only with each other, so they
 * are the same facts, with the same ids, as in the whole view): what a merged search needs.
 */
export async function mergedView(repo: Repository, patientId: string, req: FhirRequest, options: { types?: readonly string[] } = {}): Promise<MergedView> {
  const { types } = options;
  // A view of some types lists what they reference only where the merge reads it (a merged search's
  // facts carry no referenced entries); the whole view lists it for the bundles that carry it.
  const listing = { types, references: !types || types.some((t) => MERGE_READS_REFERENCES.has(t)) };
  const listed = await reachableRecord(repo, patientId, req, { ...listing, content: false });
  return viewOfListing(repo, patientId, listed, () => reachableRecord(repo, patientId, req, listing));
}

/**
 * The facts of one type that hold the given source records (as a search read them): the merge of just the
 * person's records that could share a fact with them (merged-closure.ts), which forms exactly the facts
 * the type's whole view forms of them; the type's whole view where that set cannot be decided.
 */
export async function mergedViewHolding(repo: Repository, person: Person, req: FhirRequest, type: string, seeds: readonly Resource[]): Promise<MergedView> {
  const closure = await closureRecord(repo, person, req, type, seeds);
  if (!closure) return mergedView(repo, person.focal.id as string, req, { types: [type] });
  // The closure is listed with its content, in one query per round: nothing to read again.
  return viewOfListing(repo, person.focal.id as string, closure, async () => closure);
}

/** The merged view of what was listed: the memo's when exactly that list was merged before, else merged now. */
async function viewOfListing(repo: Repository, patientId: string, listed: PatientRecord, listAgain: () => Promise<PatientRecord>): Promise<MergedView> {
  const cache = mergedViewCacheOf<Memo>(repo);
  const key = mergeInputKey(patientId, listed.entries);
  const memo = cache.get(key);
  if (memo) {
    // Participants are read again: they name the sender, which the record versions do not cover.
    const participants = await participantsOfMessages(repo, memo.messageIds);
    if (participantsKey(participants) === memo.participants) return { focal: listed.focal, ...memo.view };
  }
  let record = listed;
  await withContent(repo, record.entries);
  // A record rewritten between the listing and the content read: read both again, together.
  if (record.entries.some((e) => !e.json || e.stale)) record = await listAgain();
  const built = await buildView(repo, patientId, record);
  cache.set(mergeInputKey(patientId, record.entries), built.memo, record.entries.length);
  return { focal: record.focal, ...built.memo.view };
}

async function buildView(repo: Repository, patientId: string, { patientIds, entries }: PatientRecord): Promise<{ memo: Memo }> {
  // Source records in the order of the person's records (the enterprise record's links), then by type and
  // id (compared here, not in the database's collation), whatever was listed: the merge takes sources in
  // this order, so a view of some types, or of a closure of records, forms exactly the facts the whole
  // view forms of them, on either backend.
  const order = new Map(patientIds.map((id, i) => [id, i]));
  const rank = (e: RecordEntry): number => order.get(e.patient as string) ?? order.size;
  const byKey = (a: RecordEntry, b: RecordEntry): number => (a.type === b.type ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.type < b.type ? -1 : 1);
  const inCompartment = entries.filter((e) => e.patient !== undefined).sort((a, b) => rank(a) - rank(b) || byKey(a, b));
  const resources = inCompartment.map((e) => JSON.parse(e.json) as Resource);
  const messageIds = [...new Set(resources.map((r) => messageIdOf(r.meta?.source)).filter((m): m is string => !!m))];
  const participants = await participantsOfMessages(repo, messageIds);
  const records: SourceRecord[] = resources.map((resource, i) => ({
    resource,
    sourcePatient: inCompartment[i].patient as string,
    participant: participants.get(messageIdOf(resource.meta?.source) ?? ''),
    json: inCompartment[i].json,
  }));
  // Each source holds its own copy of an organisation: an encounter's serviceProvider is compared by the
  // organisation's identifier (Reference.identifier added from the referenced Organization).
  const organizations = new Map<string, unknown>();
  for (const e of entries) {
    if (e.type === 'Organization' && e.patient === undefined) {
      const identifier = (JSON.parse(e.json) as Organization).identifier?.find((i) => i.system && i.value);
      if (identifier) organizations.set(`Organization/${e.id}`, { system: identifier.system, value: identifier.value });
    }
  }
  for (const { resource } of records) {
    const provider = (resource as Encounter).serviceProvider;
    if (resource.resourceType === 'Encounter' && provider?.reference && !provider.identifier && organizations.has(provider.reference)) {
      provider.identifier = organizations.get(provider.reference) as Identifier;
    }
  }
  const facts = mergeRecords(records);
  const person = new Set(patientIds);
  const view = {
    facts,
    resources: facts.map((f) => factResource(f, person, patientId)),
    referenced: entries.filter((e) => e.patient === undefined),
  };
  return { memo: { view, messageIds, participants: participantsKey(participants) } };
}

const participantsKey = (participants: Map<string, { reference: string; display: string }>): string =>
  JSON.stringify([...participants].sort(([a], [b]) => a.localeCompare(b)));

/**
 * The source copies in the merged view's shape (`_view=sources`, for stewards and audits): each record
 * the caller may read of the person listed as it was stored, a fact of its own; the person's source
 * Patient records among what is referenced, since the copies point at them.
 */
export async function sourcesView(repo: Repository, patientId: string, req: FhirRequest): Promise<MergedView> {
  const { focal, entries } = await reachableRecord(repo, patientId, req);
  const copies = entries.filter((e) => e.patient !== undefined && e.type !== 'Patient');
  const facts = copies.map((e) => sourceFact({ resource: JSON.parse(e.json) as Resource, sourcePatient: e.patient as string, json: e.json }));
  const referenced = entries.filter((e) => e.patient === undefined || (e.type === 'Patient' && e.id !== patientId));
  return { focal, facts, resources: facts.map((f) => f.sources[0].resource), referenced };
}

/** The Provenance of every fact, for bundles that carry them beside the facts. */
export const provenanceOf = (view: MergedView): Resource[] => view.facts.map(factProvenance);
