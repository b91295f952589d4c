import type { Binary, Coding, Composition, CompositionSection, DocumentReference, Resource } from '@medplum/fhirtypes';
import { currentResources } from '../store/current-resources.js';
import type { Repository } from '../store/repository.js';
import { derivedLabels, labelled } from './labeler.js';
import { withReferencedLabels } from './referenced-labels.js';

/** How a relabelled resource is written back: a new version through the engine (policy, audit, index rows). */
export type WriteBack = (resource: Resource) => Promise<void>;

export interface RelabelResult {
  seen: number;
  /** Resources whose labels (or a document original's securityContext) changed: written again, or would be. */
  relabelled: string[];
}

const PAGE = 500;

/**
 * `tessera labels relabel`: brings stored resources up to the labelling every write now does, for what was
 * stored before (an older release's value sets, documents imported before their parts were labelled as
 * their entries, originals without a securityContext). Every current resource is labelled from its own
 * codes (labeler.ts) and what it takes its meaning from (referenced-labels.ts); a C-CDA document's Composition, DocumentReference and Binary also get the kinds of
 * the entries its Composition lists and its confidentiality, and the Binary names the document's patient
 * as its securityContext (so it joins their compartment). Labels are only added, never removed: a stored
 * label may be the sender's. Each resource that changes is written again as a new version through
 * `write`; with `dryRun` nothing is written and the result lists what would change.
 */
export async function relabelStored(repo: Repository, write: WriteBack, options: { dryRun?: boolean; onProgress?: (seen: number, relabelled: number) => void } = {}): Promise<RelabelResult> {
  const documents = await documentParts(repo);
  const result: RelabelResult = { seen: 0, relabelled: [] };
  for await (const resource of currentResources(repo.sql, undefined, PAGE)) {
    result.seen++;
    const reference = `${resource.resourceType}/${resource.id}`;
    const next = relabelled(await withReferencedLabels(repo.sql, resource), resource, documents.get(reference));
    if (!next) continue;
    result.relabelled.push(reference);
    if (!options.dryRun) await write(next);
    if (result.seen % PAGE === 0) options.onProgress?.(result.seen, result.relabelled.length);
  }
  options.onProgress?.(result.seen, result.relabelled.length);
  return result;
}

/** What a part of a stored document inherits from the whole. */
interface DocumentPart {
  security: Coding[];
  patient?: string;
}

/** The resource as it should be stored now, or undefined when it already is. */
function relabelled(withReferenced: Resource, resource: Resource, document: DocumentPart | undefined): Resource | undefined {
  let next: Resource = withReferenced;
  if (document) {
    const given = resource.meta?.security ?? [];
    const added = document.security.filter((c) => !given.some((g) => g.system === c.system && g.code === c.code));
    if (added.length) next = { ...next, meta: { ...next.meta, security: [...given, ...added] } };
    if (next.resourceType === 'Binary' && !next.securityContext && document.patient) next = { ...next, securityContext: { reference: document.patient } } as Binary;
  }
  next = labelled(next);
  const before = JSON.stringify([resource.meta?.security ?? [], (resource as Binary).securityContext ?? null]);
  const after = JSON.stringify([next.meta?.security ?? [], (next as Binary).securityContext ?? null]);
  return before === after ? undefined : next;
}

/**
 * The parts of every stored document (as document-mapper.ts stores them: a Composition listing the entries, a
 * DocumentReference whose context names the Composition, the Binary its attachment points to), each with
 * the labels the document's entries and confidentiality give it.
 */
async function documentParts(repo: Repository): Promise<Map<string, DocumentPart>> {
  const compositions = new Map<string, Composition>();
  const references: DocumentReference[] = [];
  for await (const r of currentResources(repo.sql, ['Composition', 'DocumentReference'], PAGE)) {
    if (r.resourceType === 'Composition') compositions.set(`Composition/${r.id}`, r);
    else references.push(r as DocumentReference);
  }
  const parts = new Map<string, DocumentPart>();
  for (const [reference, composition] of compositions) {
    const entries = await readAll(repo, sectionEntries(composition.section ?? []));
    const part: DocumentPart = { security: derivedLabels(entries, composition.confidentiality), patient: composition.subject?.reference };
    parts.set(reference, part);
    for (const documentReference of references.filter((d) => d.context?.related?.some((r) => r.reference === reference))) {
      parts.set(`DocumentReference/${documentReference.id}`, part);
      for (const content of documentReference.content ?? []) {
        const url = content.attachment?.url;
        if (url && /^Binary\/[A-Za-z0-9\-.]{1,64}$/.test(url)) parts.set(url, { ...part, patient: documentReference.subject?.reference ?? part.patient });
      }
    }
  }
  return parts;
}

function sectionEntries(sections: readonly CompositionSection[]): string[] {
  return sections.flatMap((s) => [...(s.entry ?? []).map((e) => e.reference).filter((r): r is string => !!r), ...sectionEntries(s.section ?? [])]);
}

/** The stored resources of these references (current versions; missing ones left out), by type. */
async function readAll(repo: Repository, references: readonly string[]): Promise<Resource[]> {
  const idsByType = new Map<string, string[]>();
  for (const reference of new Set(references)) {
    const [type, id] = reference.split('/');
    idsByType.set(type, [...(idsByType.get(type) ?? []), id]);
  }
  const out: Resource[] = [];
  for (const [type, ids] of idsByType) out.push(...(await repo.readMany(type, ids)));
  return out;
}
