import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { badRequest, unprocessable } from './outcome.js';
import { checkRequiredBindings } from './required-bindings.js';
import { isKnownResourceType } from './resource-types.js';

/**
 * Validates a resource body against the R4 StructureDefinitions (structure, cardinality, primitive formats)
 * and required code bindings. Throws a FhirError: 400 for something that is not a resource at all,
 * 422 for a resource that breaks the specification.
 */
export function validateFhirResource(body: unknown, expectedType?: string): Resource {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('Request body must be a JSON object holding a FHIR resource');
  }
  const resourceType = (body as { resourceType?: unknown }).resourceType;
  if (typeof resourceType !== 'string' || !isKnownResourceType(resourceType)) {
    throw badRequest(`Unknown or missing resourceType "${String(resourceType)}"`, 'resourceType');
  }
  if (expectedType && resourceType !== expectedType) {
    throw badRequest(`resourceType "${resourceType}" does not match the URL's type "${expectedType}"`, 'resourceType');
  }
  const resource = body as Resource;
  let issues: OperationOutcomeIssue[] = [];
  try {
    issues = validateResource(resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      issues = err.outcome.issue ?? [];
    } else {
      throw err;
    }
  }
  issues.push(...checkRequiredBindings(resource));
  if (issues.length) {
    throw unprocessable(issues.map(withDiagnostics));
  }
  return resource;
}

function withDiagnostics(issue: OperationOutcomeIssue): OperationOutcomeIssue {
  return issue.diagnostics || !issue.details?.text ? issue : { ...issue, diagnostics: issue.details.text };
}
