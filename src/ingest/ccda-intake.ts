import type { Bundle, DocumentReference, Identifier, Patient } from '@medplum/fhirtypes';
import { CcdaContext } from '../ccda/ccda-context.js';
import { CcdaDocumentError, readHeader, readPatient, type DocumentHeader, type DocumentPatient } from '../ccda/document-header.js';
import { mapDocument } from '../ccda/document-mapper.js';
import { DEFAULT_MAX_XML_BYTES, parseSecureXml, UnsafeXmlError } from '../ccda/secure-xml.js';
import type { XmlElement } from '../ccda/xml-element.js';
import { FhirError } from '../fhir/outcome.js';
import { MessageLog, type LoggedMessage } from '../messages/message-log.js';
import { participantById, type Participant } from '../participants/participants.js';
import { processBundle } from '../engine/bundle-processor.js';
import { findByCriteria } from '../engine/crud.js';
import { dispatch } from '../engine/fhir-router.js';
import type { Repository } from '../store/repository.js';
import { newResourceId } from '../store/resource-id.js';
import { recordMessageProvenance, stampMessageSource, versionReference, writtenVersions } from './message-provenance.js';
import { systemRequest } from './system-request.js';
import { identifierQuery } from '../bundle/transaction-builder.js';

export interface CcdaImportResult {
  messageId: string;
  status: LoggedMessage['status'];
  /** Why the document was refused or failed (status failed). */
  error?: string;
  /** The document could not be read at all (unsafe, malformed, not CDA): the sender's fault, 400. */
  rejected?: boolean;
  warnings: string[];
  /** Resource versions written ("Condition/1/_history/1"). */
  resources: string[];
  patient?: string;
  documentReference?: string;
}

/**
 * C-CDA intake (docs/interfaces.md): a document from a participant is logged raw, parsed without DOCTYPEs
 * or entities and within a size limit, filed under the sender's patient record (found by its MRN, or
 * created and so linked by the master patient index), converted section by section, and stored with
 * the original (Binary + DocumentReference + Composition) in one transaction with its Provenance and
 * the log's `processed` mark. The same document sent again (same id, same text) is a duplicate.
 */
export class CcdaIntake {
  private readonly log: MessageLog;

  constructor(
    private readonly repo: Repository,
    private readonly maxBytes = DEFAULT_MAX_XML_BYTES,
  ) {
    this.log = new MessageLog(repo.sql);
  }

  async import(xml: string, participant: Participant, channel: string): Promise<CcdaImportResult> {
    const id = newResourceId();
    const oversize = Buffer.byteLength(xml, 'utf8') > this.maxBytes;
    // An oversize document is logged without its text: the log must not become the way to store it.
    await this.log.received({ id, participantId: participant.id, channel, format: 'ccda', messageType: 'C-CDA', raw: oversize ? '' : xml, receivedAt: Date.now() });
    return this.apply(id, xml, participant);
  }

  async replay(id: string): Promise<CcdaImportResult | undefined> {
    const logged = await this.log.get(id);
    if (!logged || logged.format !== 'ccda') {
      return undefined;
    }
    const participant = logged.participantId ? await participantById(this.repo, logged.participantId) : undefined;
    if (!participant) {
      return this.fail(id, 'the participant that sent this document is no longer registered', true);
    }
    return this.apply(id, logged.raw, participant);
  }

  /** Applies every document stored but not processed (a crash between receiving and applying). */
  async recover(): Promise<number> {
    const unfinished = await this.log.unfinished('ccda');
    for (const m of unfinished) await this.replay(m.id);
    return unfinished.length;
  }

  private async apply(id: string, xml: string, participant: Participant): Promise<CcdaImportResult> {
    let root: XmlElement;
    let header: DocumentHeader;
    let person: DocumentPatient;
    try {
      root = parseSecureXml(xml, this.maxBytes);
      header = readHeader(root);
      person = readPatient(root, participant);
    } catch (err) {
      if (err instanceof UnsafeXmlError || err instanceof CcdaDocumentError) return this.fail(id, err.message, true);
      throw err;
    }
    const documentKey = header.id ? `${header.id.system}|${header.id.value}` : undefined;
    if (documentKey) await this.repo.sql.run('UPDATE message SET control_id = ?, message_type = ? WHERE id = ?', [documentKey, messageType(header), id]);
    let ctx: CcdaContext | undefined;
    try {
      return await this.repo.transaction(async (documentTx) => {
        // Everything below fails or succeeds with the document: nested writes join its transaction.
        const tx = documentTx.joined();
        const log = new MessageLog(tx.sql);
        const warnings: string[] = person.warning ? [person.warning] : [];
        if (documentKey) {
          await tx.sql.lock(`ccda:${participant.id}:${documentKey}`);
          const { original, reusedBy } = await log.earlierUse(participant.id, documentKey, id, xml);
          if (original) {
            await log.finish(id, 'duplicate', { error: `the same document was imported before as message ${original.id}`, resources: original.resources, patient: original.patient });
            return { messageId: id, status: 'duplicate' as const, warnings: [], resources: original.resources, patient: original.patient };
          }
          if (reusedBy) warnings.push(`the document id ${header.id?.value} was used before by message ${reusedBy.id} with other content: stored as another document`);
        }
        const patient = await filePatient(tx, person);
        ctx = new CcdaContext(participant, { reference: patient.reference }, id);
        ctx.warnings.push(...warnings);
        const replaced = header.replaces && (await supersede(tx, header.replaces, patient.reference));
        if (header.replaces && !replaced) ctx.warn(`the document replaces ${header.replaces.value}, which was never received`);
        mapDocument(ctx, header, xml, root, replaced ? { reference: replaced.split('/_history/')[0] } : undefined);
        const bundle = ctx.tx.bundle();
        stampMessageSource(bundle, id);
        const response = await processBundle(tx, systemRequest(bundle), dispatch);
        const written = [...(patient.created ? [patient.created] : []), ...(replaced ? [replaced] : []), ...writtenVersions(response)];
        if (written.length) {
          written.push(await recordMessageProvenance(tx, written, participant, id, `C-CDA ${header.title}${documentKey ? ` (${header.id?.value})` : ''}`));
        }
        await log.finish(id, 'processed', { warnings: ctx.warnings, resources: written, patient: patient.reference });
        return { messageId: id, status: 'processed' as const, warnings: ctx.warnings, resources: written, patient: patient.reference, documentReference: `DocumentReference/ccda-${id}` };
      });
    } catch (err) {
      if (err instanceof CcdaDocumentError) return this.fail(id, err.message, true, ctx?.warnings);
      const reason = err instanceof FhirError ? `Rejected by the FHIR store (${err.status}): ${err.located}` : `Internal error: ${(err as Error).message}`;
      return this.fail(id, reason, false, ctx?.warnings);
    }
  }

  private async fail(id: string, error: string, rejected: boolean, warnings: string[] = []): Promise<CcdaImportResult> {
    await this.log.finish(id, 'failed', { error, warnings });
    return { messageId: id, status: 'failed', error, rejected, warnings, resources: [] };
  }
}

function messageType(header: DocumentHeader): string {
  const code = header.type?.coding?.[0]?.code;
  return code ? `C-CDA^${code}` : 'C-CDA';
}

/**
 * The sender's record of the person: found by its MRN, else created (a conditional create, so two
 * documents of one new patient at once make one record; the master patient index links it on write).
 */
async function filePatient(tx: Repository, person: DocumentPatient): Promise<{ reference: string; created?: string }> {
  if (person.confirm) {
    const [existing] = (await findByCriteria(tx, 'Patient', systemRequest({ resourceType: 'Bundle', type: 'transaction' }), person.recordQuery, 1)) as Patient[];
    const same = (a?: string, b?: string) => (a ?? '').toLowerCase() === (b ?? '').toLowerCase();
    if (existing && (existing.birthDate !== person.confirm.birthDate || !existing.name?.some((n) => same(n.family, person.confirm?.family)))) {
      throw new CcdaDocumentError(`the root-only patient id ${person.patient.identifier?.[0]?.value} already names a patient of another birth date or family name: the sender seems to send one root for several people; the document was not filed`);
    }
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: person.patient, request: { method: 'POST', url: 'Patient', ifNoneExist: person.recordQuery } }] };
  const response = await processBundle(tx, systemRequest(bundle), dispatch);
  const entry = response.entry?.[0]?.response;
  const version = versionReference(entry?.location);
  if (!version) throw new Error('the patient record could not be filed');
  return { reference: version.replace(/\/_history\/.*$/, ''), created: entry?.status.startsWith('201') ? version : undefined };
}

/** A new version of a document (relatedDocument RPLC): the earlier one's DocumentReference becomes superseded. */
async function supersede(tx: Repository, replaces: Identifier, patient: string): Promise<string | undefined> {
  const query = `${identifierQuery(replaces.system as string, replaces.value as string)}&patient=${encodeURIComponent(patient)}`;
  const [earlier] = (await findByCriteria(tx, 'DocumentReference', systemRequest({ resourceType: 'Bundle', type: 'batch' }), query)) as DocumentReference[];
  if (!earlier) return undefined;
  const { resource } = await tx.update<DocumentReference>({ ...earlier, status: 'superseded' });
  return `DocumentReference/${resource.id}/_history/${resource.meta?.versionId}`;
}
