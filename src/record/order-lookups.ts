import type { TestEquivalence } from './test-equivalences.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

const DAY = 86_400_000;

/**
 * The searches that find what a set of draft orders could duplicate, over the person's merged record
 * (`_view=merged`, each fact once with its sources): for a test, the results, reports, procedures and
 * pending orders with a code of its equivalence groups since the longest look-back (index lookups on
 * code and date, not the whole record); imaging studies by their start (they have no code parameter);
 * for a medication, the person's active medication orders and statements (by status: a short list, which
 * the ingredients are then compared on). The cards are then decided on what these return.
 */
export function orderLookups(drafts: readonly any[], equivalences: readonly TestEquivalence[], person: string, now = Date.now()): string[] {
  const patient = `patient=${encodeURIComponent(`Patient/${person}`)}&_view=merged&_count=1000`;
  const urls: string[] = [];
  const groups = new Set<TestEquivalence>();
  for (const order of drafts.filter((d) => d?.resourceType === 'ServiceRequest')) {
    const ordered = new Set((order.code?.coding ?? []).map((c: any) => `${c.system}|${c.code}`));
    equivalences.filter((e) => e.codes.some((c) => ordered.has(`${c.system}|${c.code}`))).forEach((e) => groups.add(e));
  }
  if (groups.size) {
    const codes = encodeURIComponent([...new Set([...groups].flatMap((g) => g.codes.map((c) => `${c.system}|${c.code}`)))].join(','));
    const since = encodeURIComponent(`ge${new Date(now - Math.max(...[...groups].map((g) => g.lookbackDays)) * DAY).toISOString()}`);
    urls.push(
      `Observation?${patient}&code=${codes}&date=${since}`,
      `DiagnosticReport?${patient}&code=${codes}&date=${since}`,
      `Procedure?${patient}&code=${codes}&date=${since}`,
      `ServiceRequest?${patient}&code=${codes}&authored=${since}&status=active,on-hold,draft`,
      `ImagingStudy?${patient}&started=${since}`,
    );
  }
  if (drafts.some((d) => d?.resourceType === 'MedicationRequest')) {
    urls.push(`MedicationRequest?${patient}&status=active,on-hold`, `MedicationStatement?${patient}&status=active,intended,on-hold`);
  }
  return urls;
}
