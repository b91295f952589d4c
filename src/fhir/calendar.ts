/**
 * Whether the digits of an HL7 timestamp (HL7 v2 DTM and HL7 v3 / CDA TS share the form
 * YYYY[MM[DD[HH[MM[SS]]]]]) name a real moment: month 1-12, a day that month has (no 31 April, no 29
 * February outside leap years), hour 0-23, minute and second 0-59. A FHIR date or dateTime built from
 * anything else is refused by the store, so the mappers leave such values out with a warning instead.
 */
export function isRealTimestamp(year: string, month?: string, day?: string, hour?: string, minute?: string, second?: string): boolean {
  if ((month && (+month < 1 || +month > 12)) || (hour && +hour > 23) || (minute && +minute > 59) || (second && +second > 59)) {
    return false;
  }
  return !day || (+day >= 1 && +day <= new Date(Date.UTC(+year, +(month ?? 1), 0)).getUTCDate());
}

/**
 * Whether a FHIR date, dateTime or instant that has the right form names a real day: 2024-02-30 and
 * 1938-11-31 match the R4 pattern (which allows any day 01-31) but are no date at all.
 */
export function isRealFhirDate(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  return !m || isRealTimestamp(m[1], m[2], m[3]);
}
