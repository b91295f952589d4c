/** String search matching is case- and accent-insensitive (FHIR search, "string" parameters). */
export function normalizeString(value: string): string {
  // Printable ASCII has no accents to strip: most names and addresses skip the Unicode decomposition.
  const folded = PRINTABLE_ASCII.test(value) ? value : value.normalize('NFD').replace(/\p{M}/gu, '');
  return folded.toLowerCase().replace(/\s+/g, ' ').trim();
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Escapes LIKE wildcards so that user input is matched literally (used with ESCAPE '\'). */
export function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}
