import { createHash } from 'node:crypto';
import type { Repository } from '../../store/repository.js';
import type { RecordEntry } from './patient-record.js';

/**
 * A memo of the read-time merge (decision 0025), per repository (per store) and process. The merge is a
 * pure function of the source records it is given, and what it is given is already cut down to what the
 * caller may read: so the key is exactly that input (the focal record asked about, each readable record's
 * type, id, stored version and the source record it belongs to), never the caller. Two callers share an
 * entry only when they may read exactly the same records; a write, a link or unlink, a consent or label
 * change alters the input and so the key. Rules and code maps are code: a change to them restarts the
 * process, which starts with an empty memo. Entries are evicted oldest-used first beyond a bound on the
 * source records held.
 */
export class MergedViewCache<V> {
  private readonly entries = new Map<string, { value: V; records: number }>();
  private held = 0;

  constructor(private readonly maxRecords: number) {}

  get(key: string): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    // Most recently used last: Map keeps insertion order.
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.value;
  }

  set(key: string, value: V, records: number): void {
    if (records > this.maxRecords) return;
    const old = this.entries.get(key);
    if (old) {
      this.held -= old.records;
      this.entries.delete(key);
    }
    this.entries.set(key, { value, records });
    this.held += records;
    for (const [k, v] of this.entries) {
      if (this.held <= this.maxRecords) break;
      this.entries.delete(k);
      this.held -= v.records;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The merge's input as a key: the focal record and each readable record's type, id, version and source record. */
export function mergeInputKey(patientId: string, entries: readonly RecordEntry[]): string {
  const lines = entries.map((e) => `${e.type}/${e.id}/${e.version ?? `?${e.json.length}`}@${e.patient ?? ''}`).sort();
  return createHash('sha1').update(`${patientId}\n${lines.join('\n')}`).digest('hex');
}

/** Source records a server's memo holds at most (about 25 people of 2,000 records); TESSERA_RECORD_CACHE_RECORDS overrides. */
const DEFAULT_MAX_RECORDS = 50_000;

const caches = new WeakMap<Repository, MergedViewCache<unknown>>();

/** The memo of one store (tests open many stores in one process: each has its own). */
export function mergedViewCacheOf<V>(repo: Repository): MergedViewCache<V> {
  let cache = caches.get(repo);
  if (!cache) {
    const configured = Number(process.env.TESSERA_RECORD_CACHE_RECORDS);
    cache = new MergedViewCache(Number.isFinite(configured) && configured >= 0 && process.env.TESSERA_RECORD_CACHE_RECORDS !== '' ? configured : DEFAULT_MAX_RECORDS);
    caches.set(repo, cache);
  }
  return cache as MergedViewCache<V>;
}
