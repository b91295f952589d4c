import { extname } from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import { FhirError } from '../fhir/outcome.js';
import { FhirAttribution } from '../participants/fhir-attribution.js';
import type { Participant } from '../participants/participants.js';
import { dispatch } from '../engine/fhir-router.js';
import type { Repository } from '../store/repository.js';
import { asTransaction, ndjsonChunks, readResourceFile, toBundle, type ImportSummary } from './fhir-files.js';
import { systemRequest } from './system-request.js';

/**
 * `tessera import --participant ID` of FHIR files: each Bundle (an NDJSON file in chunks of 500 lines)
 * goes through the participant's pipeline, as its writes through the API do (fhir-attribution.ts):
 * logged raw as a message of the participant, its resources stamped with meta.source, one Provenance
 * naming the participant, all in one transaction. Slower than the bulk path (no worker threads, one
 * transaction per Bundle): the price of the attribution. A chunk the store refuses is written again line
 * by line, so one bad line does not keep the others out.
 */
export async function importFhirFilesAsParticipant(repo: Repository, files: string[], participant: Participant, onFile?: (file: string) => void): Promise<ImportSummary> {
  const started = Date.now();
  const summary: ImportSummary = { files: 0, resources: 0, errors: [], seconds: 0 };
  const attribution = new FhirAttribution(repo);
  const send = async (bundle: Bundle): Promise<Sent> => {
    try {
      const res = await attribution.dispatch(participant, systemRequest(bundle), dispatch, 'file');
      const entries = (res.body as Bundle | undefined)?.entry ?? [];
      // A batch answers each entry: the refused ones are errors of their own.
      const refused = entries.flatMap((e, entry) => (e.response?.status.startsWith('2') ? [] : [{ entry, message: e.response?.outcome?.issue?.[0]?.diagnostics ?? e.response?.status ?? 'failed' }]));
      return { stored: entries.length - refused.length, refused };
    } catch (err) {
      if (err instanceof FhirError) return { error: err.located };
      throw err;
    }
  };
  for (const file of files) {
    if (extname(file).toLowerCase() === '.json') {
      const doc = readResourceFile(file, summary.errors);
      const outcome = doc && (await send(toBundle(doc)));
      if (outcome && 'error' in outcome) summary.errors.push({ file, message: outcome.error });
      else if (outcome) {
        summary.resources += outcome.stored;
        for (const r of outcome.refused) summary.errors.push({ file, entry: r.entry, message: r.message });
      }
    } else {
      await importNdjsonAsParticipant(file, summary, send);
    }
    summary.files++;
    onFile?.(file);
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

type Sent = { stored: number; refused: { entry: number; message: string }[] } | { error: string };

async function importNdjsonAsParticipant(file: string, summary: ImportSummary, send: (bundle: Bundle) => Promise<Sent>): Promise<void> {
  for await (const lines of ndjsonChunks(file, summary.errors)) {
    const outcome = await send(asTransaction(lines));
    if (!('error' in outcome)) {
      summary.resources += outcome.stored;
      continue;
    }
    for (const { resource, line } of lines) {
      const single = await send(asTransaction([{ resource }]));
      if ('error' in single) summary.errors.push({ file, line, message: single.error });
      else summary.resources += single.stored;
    }
  }
}
