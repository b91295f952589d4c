import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type IssueType = OperationOutcomeIssue['code'];

/** An error that the HTTP layer turns into an OperationOutcome with the given status. */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly issues: OperationOutcomeIssue[],
  ) {
    super(issues.map((i) => i.diagnostics ?? i.details?.text ?? i.code).join('; '));
  }

  /** The issues on one line, each with where it is ("Missing required property at Provenance.target"): for message logs and ACKs. */
  get located(): string {
    return this.issues.map((i) => `${i.diagnostics ?? i.details?.text ?? i.code}${i.expression?.length ? ` at ${i.expression.join(', ')}` : ''}`).join('; ');
  }

  get outcome(): OperationOutcome {
    return { resourceType: 'OperationOutcome', issue: this.issues };
  }
}

export function fhirError(status: number, code: IssueType, diagnostics: string, expression?: string): FhirError {
  const issue: OperationOutcomeIssue = { severity: 'error', code, diagnostics };
  if (expression) {
    issue.expression = [expression];
  }
  return new FhirError(status, [issue]);
}

export const badRequest = (msg: string, expression?: string): FhirError => fhirError(400, 'invalid', msg, expression);
export const notFound = (msg: string): FhirError => fhirError(404, 'not-found', msg);
export const gone = (msg: string): FhirError => fhirError(410, 'deleted', msg);
export const conflict = (msg: string): FhirError => fhirError(409, 'conflict', msg);
export const preconditionFailed = (msg: string): FhirError => fhirError(412, 'conflict', msg);
export const unprocessable = (issues: OperationOutcomeIssue[]): FhirError => new FhirError(422, issues);
export const forbidden = (msg: string): FhirError => fhirError(403, 'forbidden', msg);
export const unauthorized = (msg: string): FhirError => fhirError(401, 'login', msg);

export function informational(diagnostics: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics }] };
}
