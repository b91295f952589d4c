import { randomUUID } from 'node:crypto';
import { SOURCE_EXTENSION } from './merged-record.js';
import type { TestEquivalence } from './test-equivalences.js';
import { ingredientsOf } from './drug-ingredients.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** A CDS Hooks card (CDS Hooks 2.0, "Card"). */
export interface Card {
  uuid: string;
  summary: string;
  detail: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; topic?: { system: string; code: string; display: string } };
  suggestions?: { label: string; uuid: string; actions: { type: 'delete'; description: string; resourceId: string }[] }[];
  selectionBehavior?: 'at-most-one' | 'any';
}

const DAY = 86_400_000;
const SOURCE_LABEL = 'Tessera health information exchange: the community record';
/** Results and studies that answer a test, and pending orders for it. */
const RESULT_TYPES = new Set(['Observation', 'DiagnosticReport', 'Procedure', 'ImagingStudy']);
const PENDING_ORDER = new Set(['active', 'on-hold', 'draft']);
const ACTIVE_MEDICATION = new Set(['active', 'on-hold', 'intended']);

const codingsOf = (cc: any): { system: string; code: string }[] => (cc?.coding ?? []).filter((c: any) => c?.system && c?.code);
const codesOf = (r: any): { system: string; code: string }[] => [...codingsOf(r.code), ...(r.procedureCode ?? []).flatMap(codingsOf), ...(r.series ?? []).flatMap((s: any) => (s.modality ? [s.modality] : []))];
const key = (c: { system: string; code: string }) => `${c.system}|${c.code}`;
const timeOf = (r: any): number | undefined =>
  [r.effectiveDateTime, r.effectivePeriod?.start, r.issued, r.performedDateTime, r.performedPeriod?.start, r.started, r.authoredOn, r.occurrenceDateTime].map((v) => (typeof v === 'string' ? Date.parse(v) : NaN)).find((t) => !Number.isNaN(t));
const sourceNames = (r: any): string[] => [...new Set<string>((r.extension ?? []).filter((e: any) => e.url === SOURCE_EXTENSION).map((e: any) => e.valueReference?.display as string))];
const valueText = (r: any): string =>
  r.valueQuantity ? `${r.valueQuantity.value} ${r.valueQuantity.unit ?? r.valueQuantity.code ?? ''}`.trim() : r.valueCodeableConcept ? (r.valueCodeableConcept.text ?? codingsOf(r.valueCodeableConcept)[0]?.code ?? '') : (r.valueString ?? r.conclusion ?? '');
const day = (t: number) => new Date(t).toISOString().slice(0, 10);

/**
 * Cards for draft orders that repeat a test resulted, or still pending, anywhere in the community within
 * the test's look-back window (equivalences are data: test-equivalences.ts), and for draft medication
 * orders that repeat an active medication (same clinical drug: ingredient, strength and form).
 * `record` is the person's merged record (each fact once, with its sources), as the caller may read it.
 */
export function duplicateOrderCards(drafts: readonly any[], record: readonly any[], equivalences: readonly TestEquivalence[], now = Date.now()): Card[] {
  const cards: Card[] = [];
  for (const order of drafts) {
    if (order?.resourceType === 'ServiceRequest') cards.push(...duplicateTests(order, record, equivalences, now));
    else if (order?.resourceType === 'MedicationRequest') cards.push(...duplicateTherapy(order, record));
  }
  return cards;
}

function duplicateTests(order: any, record: readonly any[], equivalences: readonly TestEquivalence[], now: number): Card[] {
  const ordered = new Set(codingsOf(order.code).map(key));
  const cards: Card[] = [];
  for (const eq of equivalences.filter((e) => e.codes.some((c) => ordered.has(key(c))))) {
    const codes = new Set(eq.codes.map(key));
    const since = now - eq.lookbackDays * DAY;
    const found = record
      .filter((r) => (RESULT_TYPES.has(r.resourceType) || (r.resourceType === 'ServiceRequest' && PENDING_ORDER.has(r.status) && r.id !== order.id)) && codesOf(r).some((c) => codes.has(key(c))))
      .map((r) => ({ r, time: timeOf(r) }))
      .filter((x): x is { r: any; time: number } => x.time !== undefined && x.time >= since && x.time <= now + DAY)
      .sort((a, b) => b.time - a.time);
    if (!found.length) continue;
    const lines = found.slice(0, 5).map(({ r, time }) => {
      const what = r.resourceType === 'ServiceRequest' ? 'ordered, result pending' : `resulted${valueText(r) ? `: ${valueText(r)}` : ''}`;
      return `- ${day(time)}: ${codingsOf(r.code)[0] ? (r.code.text ?? r.code.coding[0].display ?? r.code.coding[0].code) : eq.name} ${what} (${sourceNames(r).join(', ') || 'source unknown'})`;
    });
    const latest = found[0];
    const pending = latest.r.resourceType === 'ServiceRequest';
    cards.push({
      uuid: randomUUID(),
      summary: `Possible duplicate test: ${eq.name} ${pending ? 'already ordered' : 'resulted'} ${day(latest.time)}`.slice(0, 140),
      detail: `${eq.name} was ${pending ? 'ordered' : 'resulted'} within the last ${eq.lookbackDays} days (the community's look-back window for this test):\n\n${lines.join('\n')}`,
      indicator: 'warning',
      source: { label: SOURCE_LABEL, topic: { system: 'https://tessera.dev/fhir/CodeSystem/cds', code: 'duplicate-test', display: 'Duplicate test' } },
      selectionBehavior: 'at-most-one',
      suggestions: order.id ? [{ label: `Remove the ${eq.name} order`, uuid: randomUUID(), actions: [{ type: 'delete', description: `Remove the duplicate ${eq.name} order`, resourceId: `ServiceRequest/${order.id}` }] }] : undefined,
    });
  }
  return cards;
}

/**
 * Duplicate therapy: the draft repeats an active medication when they share the clinical drug (RxNorm
 * code: ingredient, strength and form) or, read from the RxNorm names, an active ingredient (another
 * strength or form of the same drug, or a combination that contains it).
 */
function duplicateTherapy(order: any, record: readonly any[]): Card[] {
  const drug = new Set(codingsOf(order.medicationCodeableConcept).map(key));
  const ingredients = new Set(ingredientsOf(order.medicationCodeableConcept));
  if (!drug.size && !ingredients.size) return [];
  const found = record
    .filter((r) => (r.resourceType === 'MedicationRequest' || r.resourceType === 'MedicationStatement') && r.id !== order.id && ACTIVE_MEDICATION.has(r.status))
    .map((r) => ({ r, same: codingsOf(r.medicationCodeableConcept).some((c) => drug.has(key(c))), shared: ingredientsOf(r.medicationCodeableConcept).filter((i) => ingredients.has(i)) }))
    .filter((x) => x.same || x.shared.length);
  if (!found.length) return [];
  const name = order.medicationCodeableConcept.text ?? order.medicationCodeableConcept.coding?.find((c: any) => c.display)?.display ?? 'this medication';
  const what = (r: any) => r.medicationCodeableConcept?.text ?? codingsOf(r.medicationCodeableConcept).map((c: any) => c.display).find(Boolean) ?? 'a medication';
  const sameDrug = found.some((x) => x.same);
  return [
    {
      uuid: randomUUID(),
      summary: (sameDrug ? `Possible duplicate therapy: ${name} is already active` : `Possible duplicate therapy: ${[...new Set(found.flatMap((x) => x.shared))].join(', ')} already active`).slice(0, 140),
      detail: found
        .map(({ r, same, shared }) => `- ${what(r)}: ${r.resourceType === 'MedicationStatement' ? 'taking' : 'prescribed'}${timeOf(r) ? ` since ${day(timeOf(r) as number)}` : ''} (${sourceNames(r).join(', ') || 'source unknown'})${same ? '' : `; same ingredient: ${shared.join(', ')}`}`)
        .join('\n'),
      indicator: 'warning',
      source: { label: SOURCE_LABEL, topic: { system: 'https://tessera.dev/fhir/CodeSystem/cds', code: 'duplicate-therapy', display: 'Duplicate therapy' } },
      selectionBehavior: 'at-most-one',
      suggestions: order.id ? [{ label: `Remove the ${name} order`, uuid: randomUUID(), actions: [{ type: 'delete', description: 'Remove the duplicate medication order', resourceId: `MedicationRequest/${order.id}` }] }] : undefined,
    },
  ];
}
