/**
 * Checks JSON text before it is parsed, in one pass without recursion: nesting deeper than any resource
 * needs (a body nested 10,000 deep overflowed the stack of the recursive walks that follow the parse), and
 * the NUL character (`\u0000`), which PostgreSQL text cannot hold and no FHIR string needs.
 */
export const MAX_JSON_DEPTH = 100;

export interface JsonTextProblem {
  message: string;
  /** 1-based line of the text where the problem is. */
  line: number;
}

/** The only characters that matter: quotes, escapes, brackets, and newlines (for the line number). */
const SIGNIFICANT = /["\\{}[\]\n]/g;

export function jsonTextProblem(text: string, maxDepth = MAX_JSON_DEPTH): JsonTextProblem | undefined {
  let depth = 0;
  let line = 1;
  let inString = false;
  SIGNIFICANT.lastIndex = 0;
  for (let found = SIGNIFICANT.exec(text); found; found = SIGNIFICANT.exec(text)) {
    const c = found[0];
    if (c === '\n') {
      line++;
    } else if (c === '"') {
      inString = !inString;
    } else if (inString) {
      if (c === '\\') {
        // An unescaped NUL is malformed JSON, which JSON.parse refuses; only the escaped one needs finding.
        if (text.startsWith('u0000', found.index + 1)) {
          return { message: 'JSON strings must not contain the NUL character (\\u0000)', line };
        }
        SIGNIFICANT.lastIndex = found.index + 2;
      }
    } else if (c === '{' || c === '[') {
      if (++depth > maxDepth) {
        return { message: `JSON nested deeper than ${maxDepth} levels`, line };
      }
    } else if (c === '}' || c === ']') {
      depth--;
    }
  }
  return undefined;
}
