/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Resource } from './fhir.js';

export function humanName(names: any[] | undefined): string {
  const n = names?.find((x) => x.use === 'official') ?? names?.[0];
  if (!n) return '(no name)';
  if (n.text) return n.text;
  return [...(n.given ?? []), n.family].filter(Boolean).join(' ') || '(no name)';
}

/** Whole years between a birth date and today. */
export function age(birthDate: string | undefined, now = new Date()): string {
  if (!birthDate) return '';
  const b = new Date(`${birthDate.slice(0, 10)}T00:00:00`);
  let years = now.getFullYear() - b.getFullYear();
  if (now.getMonth() < b.getMonth() || (now.getMonth() === b.getMonth() && now.getDate() < b.getDate())) years--;
  return Number.isFinite(years) ? String(years) : '';
}

export function address(addresses: any[] | undefined): string {
  const a = addresses?.[0];
  if (!a) return '';
  return a.text ?? [...(a.line ?? []), a.city, a.state, a.postalCode].filter(Boolean).join(', ');
}

export function concept(c: any): string {
  if (!c) return '';
  return c.text ?? c.coding?.find((x: any) => x.display)?.display ?? c.coding?.[0]?.code ?? '';
}

export const codeOf = (c: any): string => (c?.coding?.[0] ? `${c.coding[0].system ?? ''}|${c.coding[0].code ?? ''}` : concept(c));

export function date(value: string | undefined): string {
  return value ? value.slice(0, 10) : '';
}

/** When a clinical fact happened, from the element its type uses. */
export function when(r: Resource): string {
  return (
    r.effectiveDateTime ?? r.effectivePeriod?.start ?? r.issued ?? r.period?.start ?? r.occurrenceDateTime ?? r.authoredOn ?? r.recordedDate ?? r.onsetDateTime ?? r.date ?? r.meta?.lastUpdated ?? ''
  );
}

export function quantity(q: any): string {
  if (!q || q.value === undefined) return '';
  return `${q.value}${q.unit ?? q.code ? ` ${q.unit ?? q.code}` : ''}`;
}

/** The value of an Observation as text (quantity, concept, string, or its components, e.g. blood pressure). */
export function observationValue(o: Resource): string {
  if (o.valueQuantity) return quantity(o.valueQuantity);
  if (o.valueCodeableConcept) return concept(o.valueCodeableConcept);
  if (typeof o.valueString === 'string') return o.valueString;
  if (o.component?.length) return o.component.map((c: any) => `${quantity(c.valueQuantity) || concept(c.valueCodeableConcept)}`).join(' / ');
  return '';
}

export function referenceRange(o: Resource): string {
  const r = o.referenceRange?.[0];
  if (!r) return '';
  if (r.text) return r.text;
  const lo = r.low?.value;
  const hi = r.high?.value;
  return lo !== undefined && hi !== undefined ? `${lo}–${hi}` : lo !== undefined ? `≥ ${lo}` : hi !== undefined ? `≤ ${hi}` : '';
}

/** H/L/A… from the interpretation, or worked out from the reference range. */
export function abnormalFlag(o: Resource): string {
  const code = o.interpretation?.[0]?.coding?.[0]?.code;
  if (code && code !== 'N') return code;
  const v = o.valueQuantity?.value;
  const r = o.referenceRange?.[0];
  if (typeof v === 'number' && r) {
    if (r.high?.value !== undefined && v > r.high.value) return 'H';
    if (r.low?.value !== undefined && v < r.low.value) return 'L';
  }
  return '';
}

export function isGolden(r: Resource): boolean {
  return !!r.meta?.tag?.some((t) => t.system === 'https://tessera.dev/fhir/CodeSystem/mpi' && t.code === 'golden');
}
