import type { Identifier, Organization, Patient, Reference, Resource } from '@medplum/fhirtypes';
import { identifierQuery, TransactionBuilder } from '../bundle/transaction-builder.js';
import type { Participant } from '../participants/participants.js';

/** An entry the mappers could not convert: the section and entry are named in the warning; the narrative keeps it. */
export class EntryMappingError extends Error {}

/**
 * What the section mappers share: the patient the document is about, the transaction being built, and
 * the warnings. A resource with an entry id (C-CDA `id`, globally unique by design) is written as a
 * conditional update keyed by that id and the patient, so a later document repeating the entry (the next
 * visit's summary carries the same problem list) updates it instead of adding a copy; one without an id
 * gets a resource id from the message, which a replay of the same message reuses.
 */
export class CcdaContext {
  readonly tx = new TransactionBuilder();
  readonly warnings: string[] = [];
  /** References to every resource added, in order: the Composition's sections list theirs. */
  readonly mapped: Reference[] = [];
  private readonly usedIdentifiers = new Set<string>();
  private readonly sharedIdentifiers = new Set<string>();
  private unkeyed = 0;

  constructor(
    readonly participant: Participant,
    readonly patient: Reference<Patient>,
    readonly messageId: string,
  ) {}

  get organization(): Reference<Organization> {
    return { reference: `Organization/${this.participant.organizationId}`, display: this.participant.name };
  }

  warn(text: string): void {
    this.warnings.push(text);
  }

  /** Adds a resource from an entry of `section`; `ids` are the entry's C-CDA ids as identifiers. */
  add<T extends Resource>(section: string, resource: T & { identifier?: Identifier[] | Identifier }, ids: Identifier[]): Reference<T> {
    const key = ids.find((i) => i.system && i.value);
    const keyText = key && `${resource.resourceType}|${key.system}|${key.value}`;
    let reference: Reference<T>;
    if (key && keyText && !this.usedIdentifiers.has(keyText)) {
      this.usedIdentifiers.add(keyText);
      reference = this.tx.upsert(resource, `${identifierQuery(key.system as string, key.value as string)}&patient=${encodeURIComponent(this.patient.reference as string)}`);
    } else {
      if (keyText) {
        // Two entries of one document under one id (sample documents copy them): the later ones are kept
        // without the id, which would make it ambiguous as a key. Said once per id.
        if (!this.sharedIdentifiers.has(keyText)) {
          this.sharedIdentifiers.add(keyText);
          this.warn(`${section}: more than one ${resource.resourceType} in the document has the entry id ${key?.value}; the later ones are stored without it`);
        }
        if (Array.isArray(resource.identifier)) resource.identifier = resource.identifier.filter((i) => !(i.system === key?.system && i.value === key?.value));
        if (Array.isArray(resource.identifier) && !resource.identifier.length) delete resource.identifier;
      }
      // No key of its own: an id that follows the logged message and the entry's place in it, so a
      // replay of the message rewrites this resource instead of adding another.
      reference = this.tx.put({ ...resource, id: `ccda-${this.messageId}-${++this.unkeyed}` });
    }
    this.mapped.push(reference);
    return reference;
  }
}
