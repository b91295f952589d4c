import type { Bundle, BundleEntry, Observation, Resource, ServiceRequest } from '@medplum/fhirtypes';
import { processBundle } from '../engine/bundle-processor.js';
import { findByCriteria } from '../engine/crud.js';
import { dispatch } from '../engine/fhir-router.js';
import type { OrderProgress } from '../hl7v2/mapping-context.js';
import type { Repository } from '../store/repository.js';
import { stampMessageSource } from './message-provenance.js';
import { systemRequest } from './system-request.js';

/** Statuses a result is released in: changing its value afterwards is a correction. */
const RELEASED = new Set<Observation['status']>(['final', 'amended', 'corrected']);
/** Statuses that say the change is one. */
const REVISING = new Set<Observation['status']>(['corrected', 'amended', 'entered-in-error', 'cancelled']);

/**
 * Results of a message that change a released (final) result without saying so (OBX-11 not C): still
 * applied, as a new version (history keeps both), and named here so the sender and the message log hear
 * of it. A feed that resends a final with a new value is a laboratory process problem worth knowing.
 */
export async function unannouncedChanges(tx: Repository, bundle: Bundle): Promise<string[]> {
  const warnings: string[] = [];
  for (const entry of bundle.entry ?? []) {
    const incoming = entry.resource as Observation | undefined;
    const query = entry.request?.method === 'PUT' ? entry.request.url.split('?')[1] : undefined;
    if (incoming?.resourceType !== 'Observation' || !query || REVISING.has(incoming.status)) continue;
    const [stored] = (await findByCriteria(tx, 'Observation', systemRequest(bundle), query, 1)) as Observation[];
    if (!stored || !RELEASED.has(stored.status)) continue;
    const [before, after] = [valueOf(stored), valueOf(incoming)];
    if (before !== after) {
      warnings.push(`result ${incoming.identifier?.[0]?.value}: the final value ${before} is replaced by ${after} without a correction status (OBX-11 C): applied as a new version, the earlier one kept in its history`);
    }
  }
  return warnings;
}

function valueOf(o: Observation): string {
  const key = Object.keys(o).find((k) => k.startsWith('value'));
  if (!key) return '(none)';
  const v = (o as unknown as Record<string, unknown>)[key] as { value?: number; unit?: string; coding?: { code?: string }[] } | string | number | boolean;
  if (typeof v !== 'object') return JSON.stringify(v);
  if (key === 'valueQuantity') return `${v.value}${v.unit ? ` ${v.unit}` : ''}`;
  if (key === 'valueCodeableConcept') return v.coding?.map((c) => c.code).join(',') || JSON.stringify(v);
  return JSON.stringify(v);
}

/**
 * Orders stored before this message (by an order message, or an earlier result) move to the status its
 * results leave them in, and gain the order numbers they lacked (a filler number assigned since). Written
 * through the FHIR engine like the message's own resources; returns the versions written.
 */
export async function advanceOrders(tx: Repository, orders: Iterable<[string, OrderProgress]>, messageId: string): Promise<Bundle> {
  const entries: BundleEntry[] = [];
  for (const [query, progress] of orders) {
    const [stored] = (await findByCriteria(tx, 'ServiceRequest', systemRequest({ resourceType: 'Bundle', type: 'transaction' }), query, 1)) as ServiceRequest[];
    if (!stored) continue;
    const missing = progress.identifiers.filter((i) => !stored.identifier?.some((s) => s.system === i.system && s.value === i.value));
    if (stored.status === progress.status && !missing.length) continue;
    const updated: ServiceRequest = { ...stored, status: progress.status, identifier: [...(stored.identifier ?? []), ...missing] };
    delete updated.meta;
    entries.push({ resource: updated as Resource, request: { method: 'PUT', url: `ServiceRequest/${stored.id}` } });
  }
  if (!entries.length) return { resourceType: 'Bundle', type: 'transaction-response', entry: [] };
  const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: entries };
  stampMessageSource(bundle, messageId);
  return processBundle(tx, systemRequest(bundle), dispatch);
}
