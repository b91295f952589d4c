import { evalFhirPath, OperationOutcomeError } from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { badRequest, unprocessable } from './outcome.js';
import { checkRequiredBindings } from './required-bindings.js';
import { isKnownResourceType } from './resource-types.js';
import { validateStructure } from './structure-validator.js';

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
    issues = validateStructure(resource);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      issues = err.outcome.issue ?? [];
    } else {
      throw err;
    }
  }
  issues = issues.filter((issue) => !isFalsePositive(issue, resource));
  issues.push(...checkRequiredBindings(resource));
  if (issues.length) {
    throw unprocessable(issues.map(withDiagnostics));
  }
  return resource;
}

/**
 * Three places where @medplum/core 4.5 (whose rules validateStructure applies) is stricter than the R4 specification, each found on the official
 * R4 examples (test/r4-examples.test.ts):
 * - base64Binary: the R4 pattern `(\s*([0-9a-zA-Z\+/=]){4}\s*)+` allows whitespace between groups;
 * - the 1 MB limit applies to `string`, not to the xhtml narrative (`text.div`) nor to base64Binary (`Binary.data`, `Attachment.data`);
 * - an invariant whose FHIRPath yields an empty collection is satisfied, not failed; and in
 *   `A implies B`, an empty or false A satisfies it whatever B is (FHIRPath 6.5.5), which Medplum gets wrong.
 */
function isFalsePositive(issue: OperationOutcomeIssue, resource: Resource): boolean {
  const path = issue.expression?.[0];
  const text = issue.details?.text ?? '';
  if (!path) {
    return false;
  }
  if (text === 'Invalid base64Binary format') {
    const value = evalFhirPath(path, resource)[0];
    if (typeof value !== 'string') {
      return false;
    }
    const compact = value.replace(/\s+/g, '');
    return compact.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(compact);
  }
  if (text === 'String cannot be larger than 1 MB') {
    // The limit is the R4 `string` type's; base64Binary (Binary.data, Attachment.data) has none, so a
    // large document's original is held only to the C-CDA size limit (TESSERA_CCDA_MAX_BYTES).
    return path.endsWith('.div') || path === 'Binary.data' || (/\.data$/.test(path) && !/SampledData/i.test(path));
  }
  const invariant = issue.code === 'invariant' && issue.diagnostics?.startsWith('{') ? (JSON.parse(issue.diagnostics) as { fhirpath?: string }).fhirpath : undefined;
  if (invariant) {
    return evalFhirPath(path, resource).every((element) => invariantHolds(invariant, element));
  }
  return false;
}

function invariantHolds(expression: string, element: unknown): boolean {
  const at = expression.indexOf(' implies ');
  if (at > 0 && balanced(expression.slice(0, at))) {
    const premise = evalFhirPath(expression.slice(0, at), element);
    if (premise.length === 0 || (premise.length === 1 && premise[0] === false)) {
      return true;
    }
  }
  const result = evalFhirPath(expression, element);
  return result.length === 0 || result.some((v) => v !== false);
}

function balanced(text: string): boolean {
  let depth = 0;
  for (const c of text) {
    depth += c === '(' ? 1 : c === ')' ? -1 : 0;
    if (depth < 0) return false;
  }
  return depth === 0;
}

/** Clients read `diagnostics`; Medplum puts the human text in details.text (and FHIRPath JSON in diagnostics). */
function withDiagnostics(issue: OperationOutcomeIssue): OperationOutcomeIssue {
  const text = issue.details?.text;
  if (!text) {
    return issue;
  }
  const fhirpath = issue.diagnostics?.startsWith('{') ? ` (${issue.diagnostics})` : '';
  return { ...issue, diagnostics: `${text}${fhirpath}` };
}
