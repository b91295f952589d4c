import type { Identifier, Organization, Patient, Reference, ServiceRequest } from '@medplum/fhirtypes';
import type { Participant } from '../participants/participants.js';
import { TransactionBuilder } from '../bundle/transaction-builder.js';
import type { V2Message } from './message-reader.js';
import { dateTime } from './datatypes.js';
import { messageOffset } from './sender-time-zone.js';

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

/** A message the exchange acknowledges (AR) but has no use for, such as an ACK sent to it: logged as `ignored`, not queued as an error. */
export class IgnoredMessageError extends Error {}

/** What a mapper needs: the message, who sent it, where to add resources, and where to note what it left out. */
export class MappingContext {
  readonly tx = new TransactionBuilder();
  readonly warnings: string[] = [];
  /** The Patient entry of this message, once mapped. */
  patient?: Reference<Patient>;
  /**
   * Orders the results of this message answer, by the search that finds their ServiceRequest: the intake
   * moves an order stored earlier to the status the results leave it in (and adds numbers it lacked).
   */
  readonly orders = new Map<string, OrderProgress>();

  private assumedUtc = false;

  constructor(
    readonly message: V2Message,
    readonly participant: Participant,
    readonly messageId: string,
    /** The participant's configured IANA time zone, for times sent without an offset. */
    readonly timeZone?: string,
  ) {}

  /**
   * A DTM/TS of this message as a FHIR dateTime: without its own offset, in MSH-7's, else the
   * participant's time zone; else UTC, and the message is warned about once.
   */
  dateTime(text: string): string | undefined {
    return dateTime(text, { messageOffset: messageOffset(this.message.header.value(7)), zone: this.timeZone }, () => {
      if (this.assumedUtc) return;
      this.assumedUtc = true;
      this.warn('times without a UTC offset, in a message whose MSH-7 has none either, from a participant without a configured time zone: stored as UTC (set one: tessera participants time-zone)');
    });
  }

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

/** Where a message's results leave an order. */
export interface OrderProgress {
  reference: Reference<ServiceRequest>;
  status: ServiceRequest['status'];
  identifiers: Identifier[];
  /** The ServiceRequest this message creates if the order is new (kept in step with `status`). */
  created: ServiceRequest;
}
