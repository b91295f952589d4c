/**
 * A token search value split at its first bar: `system|code`, `|code` (no system),
 * `system|` (any code of the system) or `code` (any system). `system` is undefined when there is no bar.
 */
export function splitToken(value: string): { system?: string; code: string } {
  const bar = value.indexOf('|');
  return bar < 0 ? { code: value } : { system: value.slice(0, bar), code: value.slice(bar + 1) };
}
