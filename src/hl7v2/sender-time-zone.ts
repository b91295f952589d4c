/**
 * The time zone of an HL7 v2 sender, for times sent without an offset (HL7 v2.5 2.A.22: a TS/DTM without
 * one is in the sender's time zone, which MSH-7's offset states when present). The order: the value's own
 * offset; else MSH-7's; else the participant's configured IANA zone (`tessera participants time-zone`);
 * else UTC, with a warning on the message (never silently: the message log and the ACK say so).
 */
export interface SenderTimeZone {
  /** MSH-7's offset, as +hh:mm. */
  messageOffset?: string;
  /** The participant's configured IANA zone (e.g. America/New_York). */
  zone?: string;
}

/** An IANA zone name the runtime knows, else undefined. */
export function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The UTC offset (+hh:mm) a zone has at a local wall time (the offset in force then: daylight saving included). */
export function offsetAt(zone: string, y: number, mo: number, d: number, h: number, mi: number, s: number): string {
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  // Two passes: the offset at the instant the wall time would be in UTC, then at the corrected instant.
  let offset = zoneOffsetMinutes(zone, wall);
  offset = zoneOffsetMinutes(zone, wall - offset * 60_000);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function zoneOffsetMinutes(zone: string, instant: number): number {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(zone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return Math.round((asUtc - Math.floor(instant / 1000) * 1000) / 60_000);
}

/** MSH-7's offset (+hhmm / -hhmm at the end of the timestamp) as +hh:mm, if it has one. */
export function messageOffset(msh7: string): string | undefined {
  const m = /([+-])(\d{2})(\d{2})$/.exec(msh7.trim());
  return m ? `${m[1]}${m[2]}:${m[3]}` : undefined;
}
