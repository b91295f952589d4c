import { createHash } from 'node:crypto';
import { derivedLabels } from '../labels/labeler.js';
import type { Binary, CompositionSection, Composition, DocumentReference, Reference } from '@medplum/fhirtypes';
import { allergySection } from './allergies.js';
import { CcdaContext, EntryMappingError } from './ccda-context.js';
import { concept } from './cda-values.js';
import type { DocumentHeader } from './document-header.js';
import { encounterSection } from './encounters.js';
import { familyHistorySection } from './family-history.js';
import { immunizationSection } from './immunizations.js';
import { medicationSection } from './medications.js';
import { narrative, narrativeLines } from './narrative.js';
import { advanceDirectiveSection, functionalStatusSection, imagingSection, nutritionSection, outcomeSection, physicalExamSection, resultSection, socialHistorySection, vitalSignSection } from './observations.js';
import { goalSection, healthConcernSection, interventionSection, planOfTreatmentSection, referralSection } from './care-plan.js';
import { medicalEquipmentSection } from './equipment.js';
import { coverageSection } from './coverage.js';
import { diagnosisSection, problemSection } from './problems.js';
import { anesthesiaSection, procedureSection } from './procedures.js';
import { statementOf, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

export const SECTION_MAPPERS: SectionMapper[] = [
  problemSection,
  diagnosisSection,
  medicationSection,
  allergySection,
  resultSection,
  vitalSignSection,
  immunizationSection,
  procedureSection,
  anesthesiaSection,
  encounterSection,
  socialHistorySection,
  familyHistorySection,
  goalSection,
  healthConcernSection,
  planOfTreatmentSection,
  referralSection,
  functionalStatusSection,
  nutritionSection,
  physicalExamSection,
  advanceDirectiveSection,
  medicalEquipmentSection,
  coverageSection,
  interventionSection,
  outcomeSection,
  imagingSection,
];

const LOINC = '2.16.840.1.113883.6.1';
const DICOM = '1.2.840.10008.2.16.4';
const FORMAT_CODES = 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode';

export function mapperFor(section: XmlElement): SectionMapper | undefined {
  const templates = section.templates();
  const code = section.first('code');
  const sectionCode = code?.attr('code') ?? '';
  return (
    SECTION_MAPPERS.find((m) => m.templates.some((t) => templates.includes(t))) ??
    (code?.attr('codeSystem') === LOINC ? SECTION_MAPPERS.find((m) => m.loincCodes.includes(sectionCode)) : undefined) ??
    (code?.attr('codeSystem') === DICOM ? SECTION_MAPPERS.find((m) => m.dicomCodes?.includes(sectionCode)) : undefined)
  );
}

/**
 * Every section of a structured body, entry by entry: an entry that cannot be mapped is reported as a
 * warning and skipped, never failing the document (its narrative stays in the Composition and the
 * stored original). Sections Tessera has no mapper for (history of present illness, assessment...) are
 * notes: their narrative becomes the Composition section's text.
 */
function mapSections(ctx: CcdaContext, root: XmlElement): CompositionSection[] {
  const body = root.first('component/structuredBody');
  return body ? body.all('component/section').map((s) => mapSection(ctx, s)).filter((s): s is CompositionSection => !!s) : [];
}

function mapSection(ctx: CcdaContext, section: XmlElement): CompositionSection | undefined {
  const title = section.first('title')?.text() || concept(section.first('code'))?.coding?.[0]?.display || 'Untitled section';
  const text = section.first('text');
  const mapper = mapperFor(section);
  const before = ctx.mapped.length;
  const entries = section.elements('entry');
  let skipped = 0;
  entries.forEach((entry, index) => {
    const statement = statementOf(entry);
    if (!statement) {
      ctx.warn(`${title}: entry ${index + 1} holds no clinical statement`);
      return;
    }
    if (!mapper) {
      skipped++;
      return;
    }
    try {
      mapper.mapEntry({ ctx, statement, narrative: text, section: title });
    } catch (err) {
      if (!(err instanceof EntryMappingError)) throw err;
      ctx.warn(`${title}: entry ${index + 1} was not converted (${err.message}); it stays in the document's narrative`);
    }
  });
  if (skipped) {
    ctx.warn(`${title}: ${skipped} entr${skipped === 1 ? 'y was' : 'ies were'} not converted (no mapping for this section); the narrative is kept as a note`);
  }
  const lines = text ? narrativeLines(text) : [];
  const result: CompositionSection = { title };
  const code = concept(section.first('code'));
  if (code) result.code = code;
  if (lines.length) result.text = narrative(lines);
  const refs: Reference[] = ctx.mapped.slice(before);
  if (refs.length) result.entry = refs;
  const subsections = section.all('component/section').map((s) => mapSection(ctx, s)).filter((s): s is CompositionSection => !!s);
  if (subsections.length) result.section = subsections;
  // FHIR cmp-1: a section holds text, entries or sub-sections; an empty one is dropped.
  return result.text || result.entry || result.section ? result : undefined;
}

/**
 * A document into `ctx`'s transaction: its sections' entries (mapSections), and the document itself: the
 * original XML as a Binary, a DocumentReference to it (what document registries and MHD clients query),
 * and a Composition whose sections list what each section became.
 */
export function mapDocument(ctx: CcdaContext, header: DocumentHeader, xml: string, root: XmlElement, replaces?: Reference<DocumentReference>): void {
  const sections = mapSections(ctx, root);
  // The document holds all its entries say (its XML, its sections' narratives): labelled as they are.
  const security = derivedLabels(ctx.tx.resources(), header.confidentiality);
  const meta = security.length ? { meta: { security } } : {};
  // Each document is stored anew: ClinicalDocument/id names one immutable document (an exact resend is
  // a duplicate message), and a new version of it comes with a new id and a relatedDocument. The ids
  // follow the logged message, so a replay of the message rewrites the same three resources.
  const id = `ccda-${ctx.messageId}`;
  const binaryId = id;
  // securityContext names the patient: the original is then in their compartment, so their consents
  // govern it like the rest of the document (search/compartment.ts).
  const binary: Binary & { id: string } = {
    resourceType: 'Binary',
    id: binaryId,
    ...meta,
    contentType: 'application/xml',
    securityContext: { reference: ctx.patient.reference },
    data: Buffer.from(xml, 'utf8').toString('base64'),
  };
  ctx.tx.put(binary);
  const composition: Composition & { id: string } = {
    resourceType: 'Composition',
    id,
    ...meta,
    status: 'final',
    type: header.type ?? { text: header.title },
    subject: { reference: ctx.patient.reference },
    date: header.date ?? new Date().toISOString(),
    author: [ctx.organization],
    title: header.title,
    ...(header.id ? { identifier: header.id } : {}),
    ...(header.confidentiality ? { confidentiality: header.confidentiality as Composition['confidentiality'] } : {}),
    custodian: ctx.organization,
    ...(sections.length ? { section: sections } : {}),
  };
  ctx.tx.put(composition);
  const compositionRef = { reference: `Composition/${id}` };
  const content: DocumentReference['content'] = [
    {
      attachment: {
        contentType: 'application/xml',
        url: `Binary/${binaryId}`,
        size: Buffer.byteLength(xml, 'utf8'),
        hash: createHash('sha1').update(xml, 'utf8').digest('base64'),
        title: header.title,
        ...(header.date ? { creation: header.date } : {}),
      },
      format: { system: FORMAT_CODES, code: header.structured ? 'urn:hl7-org:sdwg:ccda-structuredBody:2.1' : 'urn:hl7-org:sdwg:ccda-nonXMLBody:2.1' },
    },
  ];
  const embedded = unstructuredBody(ctx, root);
  if (embedded) content.push({ attachment: embedded });
  const reference: DocumentReference & { id: string } = {
    resourceType: 'DocumentReference',
    id,
    ...meta,
    status: 'current',
    docStatus: 'final',
    ...(header.id ? { masterIdentifier: header.id } : {}),
    ...(header.setId ? { identifier: [header.setId] } : {}),
    ...(header.type ? { type: header.type } : {}),
    category: [{ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category', code: 'clinical-note' }] }],
    subject: { reference: ctx.patient.reference },
    ...(header.date?.includes('T') ? { date: header.date } : {}),
    author: [ctx.organization],
    custodian: ctx.organization,
    description: header.title,
    content,
    context: { related: [compositionRef] },
    ...(replaces ? { relatesTo: [{ code: 'replaces', target: replaces }] } : {}),
  };
  ctx.tx.put(reference);
}

/** A nonXMLBody's content (a base64 PDF, or text) as a second attachment; a reference to an outside file is reported. */
function unstructuredBody(ctx: CcdaContext, root: XmlElement): { contentType: string; data: string } | undefined {
  const text = root.first('component/nonXMLBody/text');
  if (!text) return undefined;
  const contentType = text.attr('mediaType') ?? 'text/plain';
  const reference = text.first('reference')?.attr('value');
  if (reference) {
    ctx.warn(`the document body is a reference to "${reference}", which was not sent with the document`);
    return undefined;
  }
  const raw = text.children.filter((c): c is string => typeof c === 'string').join('').trim();
  if (!raw) return undefined;
  const data = text.attr('representation') === 'B64' ? raw.replace(/\s+/g, '') : Buffer.from(raw, 'utf8').toString('base64');
  return { contentType, data };
}
