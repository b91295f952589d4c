import type { Attachment, DocumentReference } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { codeableConcept } from './datatypes.js';
import { MappingError, type MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';

/** TXA-17 document completion status (table 0271) to DocumentReference.docStatus. */
const COMPLETION: Record<string, DocumentReference['docStatus']> = { AU: 'final', LA: 'final', DO: 'preliminary', IP: 'preliminary', IN: 'preliminary', PA: 'preliminary', DI: 'preliminary' };
/** Events whose message carries the document's content (the others only notify). */
const WITH_CONTENT = new Set(['T02', 'T04', 'T06', 'T08', 'T10']);

/**
 * MDM (medical document management) to a DocumentReference, keyed by the unique document number (TXA-12)
 * so that a status change, an edit or a replacement (T03-T10) updates the one the original notification
 * created, and a cancel (T11) marks it entered-in-error. The content (T02, T04, T06, T08, T10) is the
 * OBX segments: text (TX, FT, ST) joined line by line, or encapsulated data (ED: type, subtype, base64).
 */
export function addDocument(ctx: MappingContext, event: string): void {
  const txa = ctx.message.segment('TXA');
  if (!txa) {
    throw new MappingError('the MDM message has no TXA (document notification) segment', 'TXA', '100');
  }
  const number = txa.value(12) || txa.value(12, 2);
  if (!number) {
    throw new MappingError('TXA-12 (unique document number) is empty: the document cannot be told from others', 'TXA^1^12', '101');
  }
  const document: DocumentReference = {
    resourceType: 'DocumentReference',
    masterIdentifier: { system: ctx.system('document'), value: number },
    identifier: [{ system: ctx.system('document'), value: number }],
    status: event === 'T11' ? 'entered-in-error' : 'current',
    subject: ctx.patient,
    author: [ctx.organization],
    custodian: ctx.organization,
    content: [{ attachment: { contentType: 'text/plain' } }],
  };
  const docStatus = COMPLETION[txa.value(17).toUpperCase()];
  if (docStatus) document.docStatus = docStatus;
  const type = codeableConcept(txa, 2);
  if (type) document.type = type;
  const when = ctx.dateTime(txa.value(4)) ?? ctx.dateTime(txa.value(6));
  if (when?.includes('T')) document.date = when;
  if (WITH_CONTENT.has(event)) {
    const attachment = content(ctx, ctx.message.segments('OBX'));
    if (attachment) document.content = [{ attachment: { ...attachment, ...(when ? { creation: when } : {}) } }];
    else ctx.warn('the message carries no document content in OBX-5: the document is recorded without it');
  }
  const replaced = event === 'T10' ? txa.value(13) : '';
  if (replaced) document.relatesTo = [{ code: 'replaces', target: { identifier: { system: ctx.system('document'), value: replaced } } }];
  ctx.tx.upsert(document, identifierQuery(ctx.system('document'), number));
}

function content(ctx: MappingContext, observations: V2Segment[]): Attachment | undefined {
  const lines: string[] = [];
  for (const obx of observations) {
    const type = obx.value(2).toUpperCase();
    if (type === 'ED') {
      const [contentType, subtype, encoding, data] = [obx.value(5, 2), obx.value(5, 3), obx.value(5, 4), obx.text(5, 5)];
      if (data && encoding.toUpperCase() === 'BASE64') return { contentType: `${contentType || 'application'}/${subtype || 'octet-stream'}`.toLowerCase(), data: data.replace(/\s+/g, '') };
      if (data) return { contentType: 'text/plain', data: Buffer.from(data, 'utf8').toString('base64') };
      ctx.warn(`OBX ${obx.value(1)}: encapsulated data without content: left out`);
    } else if (type === 'TX' || type === 'FT' || type === 'ST') {
      for (const r of obx.eachRepetition(5)) lines.push(obx.text(5, 1, r));
    }
  }
  return lines.length ? { contentType: 'text/plain', data: Buffer.from(lines.join('\n'), 'utf8').toString('base64') } : undefined;
}
