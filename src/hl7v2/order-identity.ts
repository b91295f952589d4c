import type { Identifier, ServiceRequest } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import type { MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';

/**
 * The numbers that name an order (HL7 v2 EI: entity id ^ namespace ^ universal id ^ universal id type):
 * the placer's (ORC-2, else OBR-2) and the filler's (ORC-3, else OBR-3). An order number whose assigning
 * application the message names (EI-2/EI-3) is an identifier of that application, so an order sent by one
 * participant and its results sent by another meet; a bare number is the sender's own.
 */
export interface OrderNumbers {
  placer?: Identifier;
  filler?: Identifier;
}

export function orderNumbers(ctx: MappingContext, orc: V2Segment | undefined, obr: V2Segment | undefined): OrderNumbers {
  const placer = orderNumber(ctx, 'placer', orc, obr, 2);
  const filler = orderNumber(ctx, 'filler', orc, obr, 3);
  return { ...(placer ? { placer } : {}), ...(filler ? { filler } : {}) };
}

function orderNumber(ctx: MappingContext, kind: 'placer' | 'filler', orc: V2Segment | undefined, obr: V2Segment | undefined, field: number): Identifier | undefined {
  const segment = [orc, obr].find((s) => s?.value(field));
  if (!segment) return undefined;
  return {
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: kind === 'placer' ? 'PLAC' : 'FILL' }] },
    system: assignerSystem(segment, field) ?? ctx.system(`${kind}-order`),
    value: segment.value(field, 1),
  };
}

/** EI-3 universal id (an OID, a URI), else EI-2 namespace id, as an identifier system; none when neither is given. */
function assignerSystem(s: V2Segment, field: number): string | undefined {
  const universal = s.value(field, 3);
  if (universal && /^\d+(\.\d+)+$/.test(universal)) return `urn:oid:${universal}`;
  if (universal && /^[a-z][a-z0-9+.-]*:/i.test(universal)) return universal;
  const namespace = s.value(field, 2) || universal;
  return namespace ? `urn:tessera:hl7v2:order-assigner:${encodeURIComponent(namespace)}` : undefined;
}

/** The order's key for the reports keyed by it: the filler's number, else the placer's. */
export function orderKey(numbers: OrderNumbers): string | undefined {
  return numbers.filler?.value ?? numbers.placer?.value;
}

/** The search that finds the ServiceRequest of an order: by the placer's number (known from the start), else the filler's. */
export function serviceRequestQuery(numbers: OrderNumbers): string | undefined {
  const id = numbers.placer ?? numbers.filler;
  return id ? identifierQuery(id.system as string, id.value as string) : undefined;
}

/** Identifiers of a ServiceRequest for these numbers. */
export function orderIdentifiers(numbers: OrderNumbers): ServiceRequest['identifier'] {
  return [numbers.placer, numbers.filler].filter((i): i is Identifier => !!i);
}
