import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Reference, Resource } from '@medplum/fhirtypes';

/**
 * Builds the FHIR transaction Bundle a message maps to. Each entry gets a urn:uuid fullUrl that other
 * entries reference; the transaction rewrites them to the stored ids. Identifier-keyed conditional
 * writes make a re-sent or corrected message update what the first one created instead of adding to it.
 */
export class TransactionBuilder {
  private readonly entries: BundleEntry[] = [];

  /** Creates or replaces the resource the query finds (a record this sender owns, e.g. its Encounter). */
  upsert<T extends Resource>(resource: T, query: string): Reference<T> {
    return this.add(resource, { method: 'PUT', url: `${resource.resourceType}?${query}` });
  }

  /** Creates the resource unless the query finds one; an existing one is left as it is (e.g. the Patient of a lab result). */
  createIfMissing<T extends Resource>(resource: T, query: string): Reference<T> {
    return this.add(resource, { method: 'POST', url: resource.resourceType, ifNoneExist: query });
  }

  /** Creates or replaces the resource under its own id (a Binary whose id another resource's attachment url names). */
  put<T extends Resource>(resource: T & { id: string }): Reference<T> {
    return this.add(resource, { method: 'PUT', url: `${resource.resourceType}/${resource.id}` });
  }

  create<T extends Resource>(resource: T): Reference<T> {
    return this.add(resource, { method: 'POST', url: resource.resourceType });
  }

  /** The resources added so far. */
  resources(): Resource[] {
    return this.entries.flatMap((e) => (e.resource ? [e.resource] : []));
  }

  bundle(): Bundle {
    return { resourceType: 'Bundle', type: 'transaction', entry: this.entries };
  }

  private add<T extends Resource>(resource: T, request: BundleEntry['request']): Reference<T> {
    const fullUrl = `urn:uuid:${randomUUID()}`;
    this.entries.push({ fullUrl, resource, request });
    return { reference: fullUrl };
  }
}

/** A search query value for `identifier=system|value`: the FHIR search escapes for | , $ and \. */
export function identifierQuery(system: string, value: string): string {
  const escape = (s: string) => s.replace(/[\\|,$]/g, (c) => `\\${c}`);
  return `identifier=${encodeURIComponent(`${escape(system)}|${escape(value)}`)}`;
}
