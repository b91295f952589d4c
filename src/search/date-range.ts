/**
 * FHIR dates carry their precision: "2020" means the whole year. Index values and search values are both
 * turned into an inclusive range [lo, hi] of epoch milliseconds, and comparisons work on ranges, as the
 * FHIR search specification describes. Values without a time zone are taken as UTC.
 */
export interface DateRange {
  lo: number;
  hi: number;
}

/**
 * Most indexed dates are instants or days. Rows whose range is at most this long are "narrow": for them
 * `hi >= x` implies `lo >= x - NARROW_SPAN_MS`, which lets a search bound its index scan on `lo`.
 * Wider rows (years, months, open periods) are few and are checked without that bound.
 */
export const NARROW_SPAN_MS = 86_400_000;

export const MIN_TIME = -8.64e15;
export const MAX_TIME = 8.64e15;

const DATE_RE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function parseDateRange(input: string): DateRange | undefined {
  const m = DATE_RE.exec(input.trim());
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) - 1 : 0;
  const day = d ? Number(d) : 1;
  if (month > 11 || day < 1 || day > 31 || (h && (Number(h) > 24 || Number(mi) > 59 || Number(s ?? 0) > 60))) {
    return undefined;
  }
  let offsetMs = 0;
  if (tz && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    offsetMs = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60_000;
  }
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  const start = Date.UTC(year, month, day, h ? Number(h) : 0, mi ? Number(mi) : 0, s ? Number(s) : 0, ms) - offsetMs;
  if (Number.isNaN(start) || new Date(start + offsetMs).getUTCDate() !== day) {
    return undefined; // e.g. 2021-02-30
  }
  let end: number;
  if (!mo) {
    end = Date.UTC(year + 1, 0, 1);
  } else if (!d) {
    end = Date.UTC(year, month + 1, 1);
  } else if (!h) {
    end = Date.UTC(year, month, day + 1);
  } else if (!s) {
    end = start + 60_000;
  } else if (!frac) {
    end = start + 1000;
  } else {
    end = start + 1;
  }
  if (!h) {
    end -= offsetMs;
  }
  return { lo: start, hi: end - 1 };
}
