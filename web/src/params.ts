/* eslint-disable @typescript-eslint/no-explicit-any */
/** Reading FHIR Parameters answers (operations): a list of named parts, each as a plain object. */
export type Part = { name: string; part?: Part[]; [value: string]: any };

/** The first value[x] of a part, as text. */
export function partValue(p: Part | undefined): string {
  if (!p) return '';
  for (const [k, v] of Object.entries(p)) {
    if (!k.startsWith('value')) continue;
    if (v && typeof v === 'object') return v.reference ?? v.display ?? v.code ?? JSON.stringify(v);
    return String(v);
  }
  return '';
}

/** Each repeated parameter `name` as a record of its parts' values. */
export function records(params: { parameter?: Part[] } | undefined, name: string): Record<string, string>[] {
  return (params?.parameter ?? []).filter((p) => p.name === name).map((p) => Object.fromEntries((p.part ?? []).map((x) => [x.name, partValue(x)])));
}
