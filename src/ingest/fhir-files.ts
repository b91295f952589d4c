import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { FhirError } from '../fhir/outcome.js';
import { processBundle } from '../server/bundle-processor.js';
import type { FhirRequest } from '../server/fhir-request.js';
import { dispatch } from '../server/fhir-router.js';
import type { Repository } from '../store/repository.js';

export interface ImportError {
  file: string;
  /** Bundle entry index or NDJSON line number (1-based), where the error is that precise. */
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

/** Lists the importable files under the given files and directories (.json, .ndjson), sorted for determinism. */
export function listImportFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const stat = statSync(p);
    if (stat.isDirectory()) {
      out.push(...listImportFiles(readdirSync(p).sort().map((f) => join(p, f))));
    } else if (['.json', '.ndjson', '.jsonl'].includes(extname(p))) {
      out.push(p);
    }
  }
  return out;
}

function systemRequest(body: Bundle): FhirRequest {
  return { method: 'POST', segments: [], query: new URLSearchParams(), rawQuery: '', body, baseUrl: 'urn:tessera', prefer: 'return=minimal' };
}

/** Wraps loose resources as a transaction: with an id they are upserted (PUT), without one created (POST). */
function asTransaction(entries: { resource: Resource; fullUrl?: string }[]): Bundle {
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

/** Imports one parsed JSON document (a Bundle or a single resource) through the normal write path. */
async function importDocument(repo: Repository, doc: Resource, file: string, summary: ImportSummary): Promise<void> {
  let bundle: Bundle;
  if (doc.resourceType === 'Bundle' && (doc.type === 'transaction' || doc.type === 'batch')) {
    bundle = doc;
  } else if (doc.resourceType === 'Bundle') {
    bundle = asTransaction((doc.entry ?? []).filter((e) => e.resource).map((e) => ({ resource: e.resource as Resource, fullUrl: e.fullUrl })));
  } else {
    bundle = asTransaction([{ resource: doc }]);
  }
  try {
    const response = await processBundle(repo, systemRequest(bundle), dispatch);
    for (const [index, entry] of (response.entry ?? []).entries()) {
      if (entry.response?.status?.startsWith('2')) {
        summary.resources++;
      } else {
        summary.errors.push({ file, entry: index, message: entry.response?.outcome?.issue?.[0]?.diagnostics ?? entry.response?.status ?? 'failed' });
      }
    }
  } catch (err) {
    summary.errors.push({ file, entry: errorEntry(err), message: (err as Error).message });
  }
}

async function importNdjson(repo: Repository, file: string, summary: ImportSummary, progress: () => void): Promise<void> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let chunk: { resource: Resource; line: number }[] = [];
  let lineNo = 0;
  const flush = async (): Promise<void> => {
    if (!chunk.length) return;
    const before = summary.errors.length;
    await importDocument(repo, asTransaction(chunk), file, summary);
    if (summary.errors.length > before) {
      // One bad line must not sink 499 good ones: retry the chunk line by line to isolate it.
      summary.errors.length = before;
      for (const { resource, line } of chunk) {
        const perLine: ImportSummary = { files: 0, resources: 0, errors: [], seconds: 0 };
        await importDocument(repo, asTransaction([{ resource }]), file, perLine);
        summary.resources += perLine.resources;
        summary.errors.push(...perLine.errors.map((e) => ({ file, line, message: e.message })));
      }
    }
    chunk = [];
    progress();
  };
  for await (const text of lines) {
    lineNo++;
    if (!text.trim()) continue;
    try {
      chunk.push({ resource: JSON.parse(text), line: lineNo });
    } catch (err) {
      summary.errors.push({ file, line: lineNo, message: `Malformed JSON: ${(err as Error).message}` });
      continue;
    }
    if (chunk.length >= NDJSON_CHUNK) {
      await flush();
    }
  }
  await flush();
}

/** Imports FHIR JSON files, Bundles and NDJSON through the same validation and write path as the API. */
export async function importFiles(repo: Repository, files: string[], progress: ImportProgress = { totalBytes: 0 }): Promise<ImportSummary> {
  const started = Date.now();
  const summary: ImportSummary = { files: 0, resources: 0, errors: [], seconds: 0 };
  let doneBytes = 0;
  for (const file of files) {
    const size = statSync(file).size;
    if (extname(file) === '.json') {
      let doc: Resource | undefined;
      try {
        doc = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        summary.errors.push({ file, message: `Malformed JSON: ${(err as Error).message}` });
      }
      if (doc && typeof doc === 'object' && typeof doc.resourceType === 'string') {
        await importDocument(repo, doc, file, summary);
      } else if (doc) {
        summary.errors.push({ file, message: 'Not a FHIR resource: no resourceType' });
      }
    } else {
      await importNdjson(repo, file, summary, () => progress.onProgress?.(doneBytes, summary.resources));
    }
    summary.files++;
    doneBytes += size;
    progress.onProgress?.(doneBytes, summary.resources);
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
