import { parentPort } from 'node:worker_threads';
import { prepareFhirModel } from '../engine/prepare-model.js';
import { prepareCreateOnlyTransaction } from './prepared-bundle.js';
import { encodePrepared, type PrepareRequest } from './prepare-protocol.js';

// A bulk-load worker: Bundle JSON text in, prepared resources (or "not eligible") out.
prepareFhirModel();
parentPort?.on('message', (request: PrepareRequest) => {
  let prepared;
  try {
    const json = Buffer.from(request.json.buffer, request.json.byteOffset, request.json.byteLength).toString('utf8');
    prepared = prepareCreateOnlyTransaction(JSON.parse(json));
  } catch {
    prepared = undefined; // unparseable or unexpected: the main thread's ordinary path reports it
  }
  const reply = encodePrepared(request.seq, prepared);
  parentPort?.postMessage(reply, [reply.payload.buffer as ArrayBuffer]);
});
parentPort?.postMessage({ ready: true });
