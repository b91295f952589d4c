import type { Organization, Patient, Reference } from '@medplum/fhirtypes';
import type { Participant } from '../participants/participants.js';
import { TransactionBuilder } from '../bundle/transaction-builder.js';
import type { V2Message } from './message-reader.js';

/** A message that parsed but cannot be mapped (no patient identifier, no event mapping): the sender gets AE. */
export class MappingError extends Error {
  constructor(
    message: string,
    /** Where in the message, as HL7 location text (e.g. "PID-3"): the ERR segment's location. */
    readonly location?: string,
    /** HL7 table 0357 error code: 100 segment sequence, 101 required field missing, 102 data type, 103 table value, 200 unsupported message type, 201 unsupported event. */
    readonly code = '207',
  ) {
    super(message);
  }
}

/** What a mapper needs: the message, who sent it, where to add resources, and where to note what it left out. */
export class MappingContext {
  readonly tx = new TransactionBuilder();
  readonly warnings: string[] = [];
  /** The Patient entry of this message, once mapped. */
  patient?: Reference<Patient>;

  constructor(
    readonly message: V2Message,
    readonly participant: Participant,
    readonly messageId: string,
  ) {}

  /** Identifier system for this sender's own keys of a kind (visit numbers, filler order numbers...). */
  system(kind: string): string {
    return `urn:tessera:participant:${this.participant.id}:${kind}`;
  }

  get organization(): Reference<Organization> {
    return { reference: `Organization/${this.participant.organizationId}`, display: this.participant.name };
  }

  warn(text: string): void {
    this.warnings.push(text);
  }
}
