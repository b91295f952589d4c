import type { PreparedBundle } from './prepared-bundle.js';

/** Main thread -> worker: one Bundle as UTF-8 JSON, transferred rather than copied. */
export interface PrepareRequest {
  seq: number;
  json: Uint8Array;
}

/** Worker -> main thread: the prepared Bundle packed into one transferred buffer (empty: not eligible). */
export interface PrepareReply {
  seq: number;
  payload: Uint8Array;
}

/**
 * Packing: the index rows and timestamps as one JSON header, then each resource's JSON text, separated by
 * NUL, which FHIR strings cannot contain. Cheaper to decode than a structured clone of many small objects.
 */
const SEPARATOR = '\u0000';
const utf8 = new TextEncoder();

export function encodePrepared(seq: number, prepared: PreparedBundle | undefined): PrepareReply {
  if (!prepared) {
    return { seq, payload: new Uint8Array(0) };
  }
  const header = JSON.stringify({
    lastUpdated: prepared.lastUpdated,
    resources: prepared.resources.map((r) => [r.type, r.id, r.rows]),
  });
  const text = [header, ...prepared.resources.map((r) => r.content)].join(SEPARATOR);
  return { seq, payload: utf8.encode(text) };
}

export function decodePrepared(payload: Uint8Array): PreparedBundle | undefined {
  if (!payload.length) {
    return undefined;
  }
  const [header, ...contents] = Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('utf8').split(SEPARATOR);
  const { lastUpdated, resources } = JSON.parse(header) as { lastUpdated: number; resources: [string, string, PreparedBundle['resources'][number]['rows']][] };
  return {
    lastUpdated,
    resources: resources.map(([type, id, rows], i) => ({ type, id, rows, content: contents[i] })),
  };
}
