import type { Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../fhir/outcome.js';
import type { FhirRequest } from './fhir-request.js';

/**
 * The input of a FHIR operation, from the URL (GET, or simple values beside a POST) and from a
 * `Parameters` body (POST), read by name whatever the value[x] type.
 */
export class OperationInput {
  private constructor(
    private readonly query: URLSearchParams,
    private readonly parameters: ParametersParameter[],
  ) {}

  static from(req: FhirRequest): OperationInput {
    const body = req.body as Resource | undefined;
    if (req.method === 'POST' && body !== undefined && body !== null && (typeof body !== 'object' || body.resourceType !== 'Parameters')) {
      throw badRequest('The body of an operation must be a Parameters resource');
    }
    return new OperationInput(req.query, (body as Parameters | undefined)?.parameter ?? []);
  }

  /** Every value given for `name`, as text (primitives as written, a Reference as its reference). */
  strings(name: string): string[] {
    const fromBody = this.parameters.filter((p) => p.name === name).map(primitiveText).filter((v): v is string => v !== undefined);
    return [...this.query.getAll(name), ...fromBody];
  }

  string(name: string): string | undefined {
    const values = this.strings(name);
    if (values.length > 1) {
      throw badRequest(`Operation parameter "${name}" may be given once`);
    }
    return values[0];
  }

  required(name: string): string {
    const value = this.string(name);
    if (value === undefined || value === '') {
      throw badRequest(`Operation parameter "${name}" is required`);
    }
    return value;
  }

  boolean(name: string): boolean | undefined {
    const value = this.string(name);
    if (value === undefined) {
      return undefined;
    }
    if (value !== 'true' && value !== 'false') {
      throw badRequest(`Operation parameter "${name}" must be true or false`);
    }
    return value === 'true';
  }

  integer(name: string, min: number, max: number): number | undefined {
    const value = this.string(name);
    if (value === undefined) {
      return undefined;
    }
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw badRequest(`Operation parameter "${name}" must be an integer from ${min} to ${max}`);
    }
    return n;
  }

  resource(name: string): Resource | undefined {
    return this.parameters.find((p) => p.name === name)?.resource;
  }
}

function primitiveText(p: ParametersParameter): string | undefined {
  for (const [key, value] of Object.entries(p)) {
    if (key === 'valueReference') {
      return (value as { reference?: string }).reference;
    }
    if (key.startsWith('value') && (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')) {
      return String(value);
    }
  }
  return undefined;
}
