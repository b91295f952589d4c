import { AsyncLocalStorage } from 'node:async_hooks';
import type { Resource } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';
import { participantOfSource, sourceMessageId, targetsFor } from './code-map-store.js';
import { CODE_SEARCH_PARAMETERS, CODED_TYPES } from './coded-elements.js';
import { applyCodeMaps, codeKey, localCodeKeys } from './local-code-mapper.js';

/** Set while the exchange rewrites what already arrived: those writes are not new arrivals for the worklist. */
const backfilling = new AsyncLocalStorage<true>();

export function isBackfilling(): boolean {
  return !!backfilling.getStore();
}

/**
 * Redoes the stored resources carrying these local codes (found through the token index of their code
 * elements) after their mapping changed: each is written again, and the write's `prepare` hook applies
 * the current maps, as a new version when that changes it. Returns how many got a new version.
 */
export async function backfillCodes(repo: Repository, codes: { participantId: string; system: string; code: string }[]): Promise<number> {
  const found = new Set<string>();
  for (const { system, code } of codes) {
    for (const [type, params] of Object.entries(CODE_SEARCH_PARAMETERS)) {
      const rows = await repo.sql.query<{ id: string }>(
        `SELECT DISTINCT id FROM sp_token WHERE type = ? AND code IN (${params.map(() => '?').join(',')}) AND value = ? AND ${system ? 'system = ?' : 'system IS NULL'}`,
        [type, ...params, code, ...(system ? [system] : [])],
      );
      rows.forEach((r) => found.add(`${type}/${r.id}`));
    }
  }
  let updated = 0;
  for (const reference of [...found].sort()) {
    const [type, id] = reference.split('/');
    const resource = await repo.read(type, id).catch(() => undefined);
    if (resource && (await rewrite(repo, resource))) updated++;
  }
  return updated;
}

/**
 * Applies the current code maps to every stored resource of the mapped types that came from the
 * participant (all participants without one): `tessera codes backfill`, which also reaches elements no
 * search parameter indexes (interpretations, units). Each resource changed is a new version.
 */
export async function backfillAll(repo: Repository, participantId: string | undefined, onProgress?: (seen: number, updated: number) => void): Promise<{ seen: number; updated: number }> {
  let seen = 0;
  let updated = 0;
  let after = -1;
  const types = [...CODED_TYPES];
  for (;;) {
    const rows = await repo.sql.query<{ rk: number; content: string }>(
      `SELECT rk, content FROM resource WHERE deleted = 0 AND rk > ? AND type IN (${types.map(() => '?').join(',')}) ORDER BY rk LIMIT 500`,
      [after, ...types],
    );
    if (!rows.length) break;
    after = Number(rows[rows.length - 1].rk);
    for (const row of rows) {
      seen++;
      const resource = JSON.parse(row.content) as Resource;
      const messageId = sourceMessageId(resource.meta?.source);
      if (!messageId || !localCodeKeys(resource).length) continue;
      if (participantId && (await participantOfSource(repo.sql, messageId)) !== participantId) continue;
      if (await rewrite(repo, resource)) updated++;
    }
    onProgress?.(seen, updated);
  }
  return { seen, updated };
}

/** Writes a stored resource again if the current maps change it (the write's prepare hook applies them). */
async function rewrite(repo: Repository, resource: Resource): Promise<boolean> {
  const messageId = sourceMessageId(resource.meta?.source);
  const participantId = messageId && (await participantOfSource(repo.sql, messageId));
  if (!participantId) return false;
  const keys = localCodeKeys(resource);
  if (!keys.length) return false;
  const targets = await targetsFor(repo.sql, participantId, keys.map((k) => k.code));
  const copy = structuredClone(resource);
  if (!applyCodeMaps(copy, (system, code) => targets.get(codeKey(system, code)) ?? []).changed) return false;
  const written = await backfilling.run(true, () => repo.update(copy));
  return !written.unchanged;
}
