import type { ConceptMap, Resource } from '@medplum/fhirtypes';
import type { Repository, WriteObserver } from '../store/repository.js';
import { isBackfilling, queueBackfill, type CodeBackfill } from './backfill.js';
import { conceptMapRows, participantOfConceptMap, participantOfSource, recordUnmapped, replaceConceptMapRows, sourceMessageId, targetsFor } from './code-map-store.js';
import { hasCodedElements } from './coded-elements.js';
import { applyCodeMaps, codeKey, localCodeKeys, type UnmappedCode } from './local-code-mapper.js';

/**
 * Participants' local codes on every write, whatever the entry (FHIR, HL7 v2, C-CDA, files): a resource
 * that came in a participant's message (meta.source) gets, beside each local coding, the standard
 * coding its sender's code map gives; local codes with none go on the sender's worklist. Watches
 * ConceptMaps: a participant's map written or deleted updates the lookup rows and queues the codes whose
 * mapping changed, in the same transaction; the resources already stored with them are redone after it
 * commits, in bounded batches (src/codes/backfill.ts, decisions 0019 and 0024).
 */
export class LocalCodes implements WriteObserver {
  readonly types: ReadonlySet<string> = new Set(['ConceptMap']);

  constructor(private readonly backfill?: CodeBackfill) {}

  async prepare(repo: Repository, resources: Resource[]): Promise<Resource[]> {
    const out = [...resources];
    const unmapped = new Map<string, { codes: UnmappedCode[]; messageId: string }>();
    for (let i = 0; i < resources.length; i++) {
      const resource = resources[i];
      if (!hasCodedElements(resource.resourceType)) continue;
      const messageId = sourceMessageId(resource.meta?.source);
      if (!messageId) continue;
      const keys = localCodeKeys(resource);
      if (!keys.length) continue;
      const participantId = await participantOfSource(repo.sql, messageId);
      if (!participantId) continue;
      const targets = await targetsFor(repo.sql, participantId, keys.map((k) => k.code));
      const copy = structuredClone(resource);
      const result = applyCodeMaps(copy, (system, code) => targets.get(codeKey(system, code)) ?? []);
      if (result.changed) out[i] = copy;
      if (result.unmapped.length) {
        const seen = unmapped.get(participantId) ?? { codes: [], messageId };
        seen.codes.push(...result.unmapped);
        unmapped.set(participantId, seen);
      }
    }
    if (!isBackfilling()) {
      for (const [participantId, { codes, messageId }] of [...unmapped].sort(([a], [b]) => a.localeCompare(b))) {
        await recordUnmapped(repo.sql, participantId, codes, messageId);
      }
    }
    return out;
  }

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    for (const map of resources as ConceptMap[]) {
      const participantId = participantOfConceptMap(map);
      const changed = await replaceConceptMapRows(repo.sql, map.id as string, participantId, participantId ? conceptMapRows(map) : []);
      await this.queue(repo, changed);
    }
  }

  async deleted(repo: Repository, _type: string, id: string): Promise<void> {
    await this.queue(repo, await replaceConceptMapRows(repo.sql, id, undefined, []));
  }

  private async queue(repo: Repository, changed: { participantId: string; system: string; code: string }[]): Promise<void> {
    if (!changed.length) return;
    await queueBackfill(repo.sql, changed);
    this.backfill?.kick();
  }
}
