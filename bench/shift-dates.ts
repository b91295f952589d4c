import type { Bundle, Observation } from '@medplum/fhirtypes';

const DAY = 86_400_000;
/** A FHIR date, dateTime or instant (the generator writes `YYYY-MM-DD` and `YYYY-MM-DDThh:mm:ssZ`). */
const DATE = /^(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * The bundle with every date moved by whole days (so date-only values stay dates and intervals stay as
 * generated). The synthetic generator fixes its "now" at 2026-01-01, while CDS Hooks compares against the
 * server's clock (the order-sign context carries no "now"): the bench moves its person's record so that
 * its results lie where a look-back window from the real time reaches them.
 */
export function shiftDates(bundle: Bundle, days: number): Bundle {
  const shift = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const m = DATE.exec(value);
      if (!m) return value;
      const day = new Date(Date.parse(`${m[1]}T00:00:00Z`) + days * DAY).toISOString().slice(0, 10);
      return `${day}${m[2] ?? ''}`;
    }
    if (Array.isArray(value)) return value.map(shift);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shift(v)]));
    return value;
  };
  return shift(bundle) as Bundle;
}

/** Whole days that bring the latest result with `code` (LOINC) to `daysAgo` days before `now`. */
export function daysToBring(bundle: Bundle, code: string, daysAgo: number, now = Date.now()): number {
  const times = (bundle.entry ?? [])
    .map((e) => e.resource as Observation | undefined)
    .filter((r) => r?.resourceType === 'Observation' && r.code?.coding?.some((c) => c.code === code) && r.effectiveDateTime)
    .map((r) => Date.parse(r?.effectiveDateTime as string));
  if (!times.length) throw new Error(`The generated record has no result with code ${code}`);
  return Math.floor((now - daysAgo * DAY - Math.max(...times)) / DAY);
}
