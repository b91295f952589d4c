import { randomUUID } from 'node:crypto';
import { FhirEngine } from '../engine/fhir-engine.js';
import { requestFor, type FhirResponse } from '../engine/fhir-request.js';
import { FhirError } from '../fhir/outcome.js';
import type { Tessera } from '../server/tessera.js';

const CLI_BASE = 'urn:tessera:cli';

/** A FHIR interaction run by the operator through the engine (the exchange's own work: no token, full reach). */
export async function asOperator(t: Tessera, method: string, url: string, body?: unknown): Promise<FhirResponse> {
  return new FhirEngine(t.repo).handle(requestFor(method, url, { body, baseUrl: CLI_BASE }), randomUUID());
}

/** An operator command's error as one line: an OperationOutcome's diagnostics, else the message. */
export function failure(err: unknown): string {
  if (err instanceof FhirError) return `${err.status}: ${err.outcome.issue?.map((i) => i.diagnostics).join('; ')}`;
  return (err as Error).message;
}
