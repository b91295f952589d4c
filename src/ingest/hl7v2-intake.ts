import { participantTimeZone } from '../participants/time-zone.js';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { FhirError } from '../fhir/outcome.js';
import { buildAck, salvageControlId, type AckCode, type AckError } from '../hl7v2/acknowledgement.js';
import { decodeMessage } from '../hl7v2/character-set.js';
import { IgnoredMessageError, MappingError } from '../hl7v2/mapping-context.js';
import { mapV2Message, type MappedMessage } from '../hl7v2/message-mapper.js';
import { MalformedMessageError, V2Message } from '../hl7v2/message-reader.js';
import { MessageLog, type LoggedMessage } from '../messages/message-log.js';
import { PatientLinker } from '../mpi/patient-linker.js';
import { Stewardship } from '../mpi/stewardship.js';
import { participantById, participantForHl7, type Participant } from '../participants/participants.js';
import { processBundle } from '../engine/bundle-processor.js';
import { findByCriteria } from '../engine/crud.js';
import { dispatch } from '../engine/fhir-router.js';
import { RedoWithSavepoints, type Repository } from '../store/repository.js';
import { newResourceId } from '../store/resource-id.js';
import { recordMessageProvenance, stampMessageSource, writtenVersions } from './message-provenance.js';
import { systemRequest } from './system-request.js';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { advanceOrders, unannouncedChanges } from './result-revisions.js';

/** A message stored in the log and ready to apply, or already answered (`early`). */
export interface Admitted {
  id: string;
  raw: string;
  message?: V2Message;
  participant?: Participant;
  early?: IntakeResult;
  /** What reading its bytes had to guess (a character set): warnings of the message. */
  notes?: string[];
}

export interface IntakeResult {
  messageId: string;
  ackCode: AckCode;
  /** The ACK to send back (ER7, segments separated by CR). */
  ack: string;
  status: LoggedMessage['status'];
}

/**
 * HL7 v2 intake: a message is stored raw in the message log (`admit`), then parsed, attributed to its
 * participant, mapped and applied in a savepoint that also marks it processed (`process`); the caller
 * acknowledges it only after the commit. The MLLP listener runs both halves in one transaction per batch
 * (IntakeBatcher). A message stored but never applied (a log row left `received`) is applied by
 * `recover` at the next start. A control id the sender already had applied, with the same text, is
 * acknowledged again and not re-applied.
 */
export class Hl7v2Intake {
  private readonly log: MessageLog;

  constructor(private readonly repo: Repository) {
    this.log = new MessageLog(repo.sql);
  }

  /**
   * The first half: decode (bytes, by MSH-18: see character-set.ts), parse, attribute and store the raw
   * message (status received). A message that does not parse or comes from an unknown sender is finished
   * here (failed, AR).
   */
  async admit(input: string | Buffer, channel: string): Promise<Admitted> {
    const id = newResourceId();
    const decoded = typeof input === 'string' ? { text: input, warnings: [] } : decodeMessage(input);
    const raw = decoded.text;
    let message: V2Message;
    try {
      message = V2Message.parse(raw);
    } catch (err) {
      if (!(err instanceof MalformedMessageError)) throw err;
      await this.log.received({ id, channel, format: 'hl7v2', raw, receivedAt: Date.now() });
      return { id, raw, early: await this.rejectMalformed(id, raw, err) };
    }
    const participant = await participantForHl7(this.repo, message.sendingFacility, message.sendingApplication);
    await this.log.received({ id, participantId: participant?.id, channel, format: 'hl7v2', messageType: message.type, controlId: message.controlId, raw, receivedAt: Date.now() });
    if (!participant) {
      return { id, raw, early: await this.rejectUnknownSender(id, message) };
    }
    return { id, raw, message, participant, notes: decoded.warnings };
  }

  /** The second half: apply an admitted message (in a savepoint of its own when inside a larger transaction). */
  async process(admitted: Admitted): Promise<IntakeResult> {
    if (admitted.early || !admitted.message || !admitted.participant) {
      return admitted.early as IntakeResult;
    }
    return this.apply(admitted.id, admitted.raw, admitted.message, admitted.participant, admitted.notes);
  }

  /** Runs a logged message again (after a mapping fix, or one left unprocessed by a crash). */
  async replay(id: string): Promise<IntakeResult | undefined> {
    const logged = await this.log.get(id);
    if (!logged) {
      return undefined;
    }
    let message: V2Message;
    try {
      message = V2Message.parse(logged.raw);
    } catch (err) {
      if (!(err instanceof MalformedMessageError)) throw err;
      return this.rejectMalformed(id, logged.raw, err);
    }
    const participant = (logged.participantId && (await participantById(this.repo, logged.participantId))) || (await participantForHl7(this.repo, message.sendingFacility, message.sendingApplication));
    if (!participant) {
      return this.rejectUnknownSender(id, message);
    }
    if (!logged.participantId) {
      await this.repo.sql.run('UPDATE message SET participant_id = ? WHERE id = ?', [participant.id, id]);
    }
    return this.apply(id, logged.raw, message, participant);
  }

  /** Applies every message stored but not processed (a crash between receiving and applying). */
  async recover(): Promise<number> {
    const unfinished = await this.log.unfinished('hl7v2');
    for (const m of unfinished) await this.replay(m.id);
    return unfinished.length;
  }

  private async apply(id: string, raw: string, message: V2Message, participant: Participant, notes: string[] = []): Promise<IntakeResult> {
    let mapped: MappedMessage | undefined;
    try {
      const outcome = await this.repo.transaction(async (messageTx) => {
        // Everything below fails or succeeds with the message (its own savepoint inside a batch): nested writes join it.
        const tx = messageTx.joined();
        // Two copies of one message on two connections: the second waits here and finds the first.
        await tx.sql.lock(`hl7v2:${participant.id}:${message.controlId}`);
        const log = new MessageLog(tx.sql);
        const { original, reusedBy } = await log.earlierUse(participant.id, message.controlId, id, raw);
        if (original) {
          await log.finish(id, 'duplicate', { error: `retransmission of message ${original.id} (control id ${message.controlId})`, resources: original.resources, patient: original.patient });
          return 'duplicate' as const;
        }
        mapped = mapV2Message(message, participant, id, await participantTimeZone(tx.sql, participant.id));
        mapped.warnings.unshift(...notes);
        // Whatever put it there (bytes of another character set, a \Xhh\ escape that is not UTF-8): never stored unsaid.
        if (JSON.stringify(mapped.bundle).includes('\uFFFD') && !mapped.warnings.some((w) => w.includes('U+FFFD'))) {
          mapped.warnings.push('a stored value contains U+FFFD replacement characters (bytes that were not text in the message\'s character set): check it against the message log');
        }
        if (reusedBy) {
          mapped.warnings.push(`control id ${message.controlId} was used before by message ${reusedBy.id} with other content: applied as a new message`);
        }
        stampMessageSource(mapped.bundle, id);
        mapped.warnings.push(...(await unannouncedChanges(tx, mapped.bundle)));
        const response = await processBundle(tx, systemRequest(mapped.bundle), dispatch);
        // What the write path told a FHIR caller (an identifier the patient index cannot use, an MRN reused
        // for someone else) reaches the message log entry and the ACK as well.
        mapped.warnings.push(...writeWarnings(response), ...tx.takeWarnings());
        const written = [...writtenVersions(response), ...writtenVersions(await advanceOrders(tx, mapped.orders, id))];
        const patient = patientOf(response, mapped.bundle);
        const mergeWarning = mapped.merge && (await applyMerge(tx, participant, mapped.merge));
        if (mergeWarning) mapped.warnings.push(mergeWarning);
        if (written.length) {
          written.push(await recordMessageProvenance(tx, written, participant, id, `HL7 v2 ${message.type} control id ${message.controlId}`));
        }
        await log.finish(id, 'processed', { warnings: mapped.warnings, resources: written, patient });
        return 'processed' as const;
      });
      const warnings: AckError[] = (mapped?.warnings ?? []).map((text) => ({ code: '207', text, severity: 'W' }));
      return this.result(id, outcome, buildAck(message, 'AA', id, outcome === 'processed' ? warnings : []), 'AA');
    } catch (err) {
      // Not this message's fault, or not the attempt to record it in: the batch is run again (a deadlock
      // with another batch: from the start; a failure without savepoints: with them), so no ACK yet. On
      // PostgreSQL the failed statement has also ended the transaction, so logging here would fail anyway.
      if (this.repo.db.isTransientConflict(err)) throw err;
      if (this.repo.failedOptimistically) throw new RedoWithSavepoints();
      const error = describe(err);
      if (err instanceof IgnoredMessageError) {
        // Acknowledged (AR, so a sender's engine does not resend it) but not an error to work on: no error-queue entry.
        await this.log.finish(id, 'ignored', { error: error.text });
        return this.result(id, 'ignored', buildAck(message, 'AR', id, [error]), 'AR');
      }
      await this.log.finish(id, 'failed', { error: error.text, warnings: mapped?.warnings });
      // A message of a type or event Tessera does not handle is rejected (AR); one it could not map or store, an error (AE).
      const code: AckCode = err instanceof MappingError && (err.code === '200' || err.code === '201') ? 'AR' : 'AE';
      return this.result(id, 'failed', buildAck(message, code, id, [error]), code);
    }
  }

  /** AR for text that is not an HL7 v2 message; the log row is marked failed with the reason. */
  private async rejectMalformed(id: string, raw: string, err: MalformedMessageError): Promise<IntakeResult> {
    await this.log.finish(id, 'failed', { error: `malformed: ${err.message}` });
    return this.result(id, 'failed', buildAck(undefined, 'AR', id, [{ code: '100', text: `Malformed message: ${err.message}`, severity: 'E' }], salvageControlId(raw)), 'AR');
  }

  /** AR for a message no registered participant sent. */
  private async rejectUnknownSender(id: string, message: V2Message): Promise<IntakeResult> {
    const text = `Unknown sender: no participant is registered for sending facility "${message.sendingFacility}"${message.sendingApplication ? ` / application "${message.sendingApplication}"` : ''}`;
    await this.log.finish(id, 'failed', { error: text });
    return this.result(id, 'failed', buildAck(message, 'AR', id, [{ code: '207', text, location: 'MSH^1^4', severity: 'E' }]), 'AR');
  }

  private result(messageId: string, status: LoggedMessage['status'], ack: string, ackCode: AckCode): IntakeResult {
    return { messageId, status, ack, ackCode };
  }
}

function describe(err: unknown): AckError {
  if (err instanceof IgnoredMessageError) {
    return { code: '200', text: err.message, location: 'MSH^1^9', severity: 'E' };
  }
  if (err instanceof MappingError) {
    return { code: err.code, text: err.message, location: err.location, severity: 'E' };
  }
  if (err instanceof FhirError) {
    // The mapped resources failed validation or a conditional write: what the store said, not a stack.
    return { code: '207', text: `Rejected by the FHIR store (${err.status}): ${err.located}`, severity: 'E' };
  }
  return { code: '207', text: `Internal error: ${err instanceof Error ? err.message : String(err)}`, severity: 'E' };
}

function patientOf(response: Bundle, bundle: Bundle): string | undefined {
  const index = (bundle.entry ?? []).findIndex((e) => e.resource?.resourceType === 'Patient');
  const location = index >= 0 ? response.entry?.[index]?.response?.location : undefined;
  const m = location && /Patient\/([^/]+)/.exec(location);
  return m ? `Patient/${m[1]}` : undefined;
}

/**
 * ADT^A40: the sender merged two of its records. The prior record (MRG-1) is marked replaced by the
 * survivor; with the master patient index on, it is linked into the survivor's enterprise identity as a
 * steward's link would be (docs/matching.md), the event naming the participant.
 */
async function applyMerge(tx: Repository, participant: Participant, merge: NonNullable<MappedMessage['merge']>): Promise<string | undefined> {
  const find = async (mrn: string) => (await findByCriteria(tx, 'Patient', systemRequest({ resourceType: 'Bundle', type: 'batch' }), identifierQuery(participant.mrnSystem, mrn)))[0]?.id;
  const [survivor, prior] = [await find(merge.survivorMrn), await find(merge.priorMrn)];
  if (!prior || !survivor || prior === survivor) {
    // Nothing to merge: the sender never sent the retired record (or named the survivor twice).
    return `A40: the prior record ${merge.priorMrn} (MRG-1) was never received from this sender: nothing to merge`;
  }
  const retired = await tx.read<Patient>('Patient', prior);
  await tx.update<Patient>({ ...retired, active: false, link: [...(retired.link ?? []).filter((l) => l.type !== 'replaced-by'), { other: { reference: `Patient/${survivor}` }, type: 'replaced-by' }] });
  if (tx.observerOf(PatientLinker)) {
    await new Stewardship(tx, `participant:${participant.id}`).link(prior, survivor, `HL7 v2 A40 merge from ${participant.name}`);
  }
  return undefined;
}

/** The warnings the write path put on the entries of a processed Bundle, each named by the resource it concerns. */
export function writeWarnings(response: Bundle): string[] {
  return (response.entry ?? []).flatMap((entry) => {
    const where = /([A-Z][A-Za-z]+)\/[^/]+/.exec(entry.response?.location ?? '')?.[1] ?? 'resource';
    return (entry.response?.outcome?.issue ?? []).filter((i) => i.severity === 'warning' && i.diagnostics).map((i) => `${where}: ${i.diagnostics}`);
  });
}
