/**
 * Which of its context's own elements an invariant's FHIRPath can read, so that the validator can skip
 * evaluating it on a value that has none of them: `contained.contained.empty()` (dom-2) reads only
 * `contained`, and on a resource without `contained` its result is the one it has on an empty object,
 * computed once. Every resource carries dom-2, dom-4 and dom-5, and evaluating an invariant with
 * Medplum's FHIRPath engine was a third of validation's time on HL7 intake.
 *
 * The element names are over-approximated from the expression's text (any identifier not reached through
 * a dot, string literals removed): an extra name only makes the shortcut apply less often. Expressions
 * that can see more than the context's own elements are never scoped: environment variables (`%resource`),
 * `$this`, a function applied to the context itself (`exists()`, `children()`, `extension(...)`), a
 * capitalised name (a type name such as `Patient.name` filters the context itself), delimited identifiers.
 */
export function constraintScope(expression: string): string[] | undefined {
  const text = expression.replace(/'(?:\\.|[^'\\])*'/g, "''");
  if (/[%$`]/.test(text)) {
    return undefined;
  }
  const names = new Set<string>();
  for (const match of text.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) {
    const name = match[0];
    const before = text.slice(0, match.index).trimEnd();
    if (before.endsWith('.') || (before.length && /[0-9@]$/.test(before) && !/\s$/.test(text.slice(0, match.index)))) {
      continue; // a path step or function after a dot; or the tail of a number or date literal
    }
    if (KEYWORDS.has(name)) {
      continue;
    }
    if (/^[A-Z]/.test(name) || /^\s*\(/.test(text.slice((match.index ?? 0) + name.length))) {
      return undefined;
    }
    names.add(name);
  }
  return [...names];
}

const KEYWORDS = new Set(['and', 'or', 'xor', 'implies', 'is', 'as', 'in', 'contains', 'div', 'mod', 'true', 'false']);

/** Whether a JSON object has a property for any of these element names (a choice `value` as `valueQuantity`, a primitive's `_name`). */
export function hasAnyElement(obj: Record<string, unknown>, names: readonly string[]): boolean {
  for (const key of Object.keys(obj)) {
    const bare = key.startsWith('_') ? key.slice(1) : key;
    for (const name of names) {
      if (bare === name || (bare.length > name.length && bare.startsWith(name) && isUpperCase(bare.charCodeAt(name.length)))) {
        return true;
      }
    }
  }
  return false;
}

function isUpperCase(code: number): boolean {
  return code >= 65 && code <= 90;
}
