import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { jsonTextProblem } from '../fhir/json-limits.js';
import { FhirError } from '../fhir/outcome.js';
import { BundleGroupWriter, DEFAULT_GROUP_RESOURCES, type BundleOutcome } from './bundle-group-writer.js';
import type { PreparePool } from './prepare-pool.js';
import type { Repository } from '../store/repository.js';

export interface ImportError {
  file: string;
  /** Bundle entry index or line number (1-based: an NDJSON line, or the line of a JSON file), where the error is that precise. */
  entry?: number;
  line?: number;
  message: string;
}

export interface ImportSummary {
  files: number;
  resources: number;
  errors: ImportError[];
  seconds: number;
}

export interface ImportProgress {
  totalBytes: number;
  onProgress?: (doneBytes: number, resources: number) => void;
}

const NDJSON_CHUNK = 500;

export const FHIR_FILE_EXTENSIONS = ['.json', '.ndjson', '.jsonl'];

/** Lists the importable files (by extension: FHIR by default) under the given files and directories, sorted for determinism. */
export function listImportFiles(paths: string[], extensions: string[] = FHIR_FILE_EXTENSIONS): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const stat = statSync(p);
    if (stat.isDirectory()) {
      out.push(...listImportFiles(readdirSync(p).sort().map((f) => join(p, f)), extensions));
    } else if (extensions.includes(extname(p).toLowerCase())) {
      out.push(p);
    }
  }
  return out;
}

/** Wraps loose resources as a transaction: with an id they are upserted (PUT), without one created (POST). */
export function asTransaction(entries: { resource: Resource; fullUrl?: string }[]): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: entries.map(({ resource, fullUrl }): BundleEntry => ({
      fullUrl,
      resource,
      request: resource.id ? { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } : { method: 'POST', url: resource.resourceType },
    })),
  };
}

function errorEntry(err: unknown): number | undefined {
  const m = /Bundle\.entry\[(\d+)\]/.exec(err instanceof FhirError ? err.message : '');
  return m ? Number(m[1]) : undefined;
}

/** Any JSON document as a Bundle to write: transactions and batches as they are, anything else wrapped. */
export function toBundle(doc: Resource): Bundle {
  if (doc.resourceType === 'Bundle' && (doc.type === 'transaction' || doc.type === 'batch')) {
    return doc;
  }
  if (doc.resourceType === 'Bundle') {
    return asTransaction((doc.entry ?? []).filter((e) => e.resource).map((e) => ({ resource: e.resource as Resource, fullUrl: e.fullUrl })));
  }
  return asTransaction([{ resource: doc }]);
}

/** Counts what a written Bundle stored and records what it refused, with file and entry or line. */
function record(summary: ImportSummary, outcome: BundleOutcome, file: string, line?: number): void {
  if ('error' in outcome) {
    summary.errors.push({ file, line, entry: line === undefined ? errorEntry(outcome.error) : undefined, message: outcome.error.message });
    return;
  }
  for (const [index, entry] of (outcome.response.entry ?? []).entries()) {
    if (entry.response?.status?.startsWith('2')) {
      summary.resources++;
    } else {
      const message = entry.response?.outcome?.issue?.[0]?.diagnostics ?? entry.response?.status ?? 'failed';
      summary.errors.push({ file, line, entry: line === undefined ? index : undefined, message });
    }
  }
}

/** A JSON file's resource, or undefined with the reason recorded (malformed JSON, no resourceType). */
export function readResourceFile(file: string, errors: ImportError[]): Resource | undefined {
  let doc: Resource | undefined;
  const text = readFileSync(file, 'utf8');
  const problem = jsonTextProblem(text);
  if (problem) {
    errors.push({ file, line: problem.line, message: problem.message });
    return undefined;
  }
  try {
    doc = JSON.parse(text);
  } catch (err) {
    errors.push({ file, message: `Malformed JSON: ${(err as Error).message}` });
    return undefined;
  }
  if (doc && typeof doc === 'object' && typeof doc.resourceType === 'string') {
    return doc;
  }
  if (doc) errors.push({ file, message: 'Not a FHIR resource: no resourceType' });
  return undefined;
}

/** An NDJSON file's resources, NDJSON_CHUNK lines at a time, with their line numbers; a malformed line is recorded and skipped. */
export async function* ndjsonChunks(file: string, errors: ImportError[]): AsyncGenerator<{ resource: Resource; line: number }[]> {
  let chunk: { resource: Resource; line: number }[] = [];
  let lineNo = 0;
  for await (const text of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
    lineNo++;
    if (!text.trim()) continue;
    const problem = jsonTextProblem(text);
    if (problem) {
      errors.push({ file, line: lineNo, message: problem.message });
      continue;
    }
    try {
      chunk.push({ resource: JSON.parse(text), line: lineNo });
    } catch (err) {
      errors.push({ file, line: lineNo, message: `Malformed JSON: ${(err as Error).message}` });
      continue;
    }
    if (chunk.length >= NDJSON_CHUNK) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

async function importNdjson(writer: BundleGroupWriter, file: string, summary: ImportSummary, progress: () => void): Promise<void> {
  const failedChunks: { resource: Resource; line: number }[][] = [];
  for await (const lines of ndjsonChunks(file, summary.errors)) {
    await writer.add(asTransaction(lines), (outcome) => ('error' in outcome ? failedChunks.push(lines) : record(summary, outcome, file)));
    progress();
  }
  await writer.flush();
  // One bad line must not sink the good ones of its chunk: write that chunk again line by line.
  for (const failed of failedChunks) {
    for (const { resource, line } of failed) {
      await writer.add(asTransaction([{ resource }]), (outcome) => record(summary, outcome, file, line));
    }
  }
  await writer.flush();
}

/** Imports FHIR JSON files, Bundles and NDJSON through the same validation and write path as the API. */
export async function importFiles(
  repo: Repository,
  files: string[],
  progress: ImportProgress = { totalBytes: 0 },
  pool?: PreparePool,
): Promise<ImportSummary> {
  const started = Date.now();
  const summary: ImportSummary = { files: 0, resources: 0, errors: [], seconds: 0 };
  const writer = new BundleGroupWriter(repo, DEFAULT_GROUP_RESOURCES, pool);
  let doneBytes = 0;
  for (const file of files) {
    const size = statSync(file).size;
    if (extname(file).toLowerCase() === '.json') {
      const doc = readResourceFile(file, summary.errors);
      if (doc) await writer.add(toBundle(doc), (outcome) => record(summary, outcome, file));
    } else {
      await importNdjson(writer, file, summary, () => progress.onProgress?.(doneBytes, summary.resources));
    }
    summary.files++;
    doneBytes += size;
    progress.onProgress?.(doneBytes, summary.resources);
  }
  await writer.flush();
  progress.onProgress?.(doneBytes, summary.resources);
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
