import { useState } from 'preact/hooks';
import { base64Blob, saveAs, type Api, type Resource } from '../fhir.js';
import { concept, date, when } from '../format.js';
import { readCda, type CdaDocument, type CdaSection } from '../cda.js';
import { Empty, Section } from '../ui.js';
import type { Badge } from './RecordSections.js';

/** The document as sent: its attachment, by reference (a Binary) or inline. */
async function originalOf(api: Api, r: Resource): Promise<{ blob: Blob; filename: string }> {
  const att = r.content?.[0]?.attachment;
  const filename = `${r.id}.${att?.contentType?.includes('xml') ? 'xml' : 'txt'}`;
  if (att?.url) return { blob: await api.original(att.url), filename };
  if (att?.data) return { blob: base64Blob(att.data, att.contentType), filename };
  throw new Error('This document has no content attached.');
}

function CdaSectionView({ section, level }: { section: CdaSection; level: number }) {
  const Heading = level <= 4 ? 'h4' : level === 5 ? 'h5' : 'h6';
  return (
    <section aria-label={section.title} class="cda-section">
      <Heading>{section.title}</Heading>
      {section.narrative ?? <p class="empty">No text in this section.</p>}
      {section.sections.map((s, i) => <CdaSectionView key={i} section={s} level={level + 1} />)}
    </section>
  );
}

/**
 * The person's documents: **Read** renders a C-CDA document's narrative section by section (cda.tsx:
 * safe HTML from the original's narrative blocks), **Download** saves the original as sent.
 */
export function Documents({ api, items, badge }: { api: Api; items: Resource[]; badge: Badge }) {
  const [error, setError] = useState<string | undefined>();
  const [reading, setReading] = useState<CdaDocument | undefined>();
  const download = async (r: Resource) => {
    setError(undefined);
    try {
      const { blob, filename } = await originalOf(api, r);
      saveAs(blob, filename);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const read = async (r: Resource) => {
    setError(undefined);
    try {
      setReading(readCda(await (await originalOf(api, r)).blob.text()));
      requestAnimationFrame(() => document.getElementById('reading-h')?.focus());
    } catch (err) {
      setError(`This document cannot be shown readably (${(err as Error).message}); download the original.`);
    }
  };
  return (
    <Section title="Documents" id="documents" count={items.length}>
      {error && <p class="error" role="alert">{error}</p>}
      {items.length ? (
        <table>
          <caption class="sr-only">Documents, newest first</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">Document</th><th scope="col">Sources</th><th scope="col">Read or download</th></tr></thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.id}>
                <td>{date(when(r))}</td><td>{concept(r.type) || r.description || 'Document'}</td><td>{badge(r)}</td>
                <td>
                  <button type="button" onClick={() => read(r)} aria-label={`Read ${concept(r.type) || 'document'} of ${date(when(r))}`}>Read</button>{' '}
                  <button type="button" class="secondary" onClick={() => download(r)}>Download</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what="documents" />}
      {reading && (
        <article class="card document" aria-labelledby="reading-h">
          <h3 id="reading-h" tabIndex={-1}>{reading.title}</h3>
          <p class="note">{[reading.date && `Dated ${reading.date}`, reading.author && `by ${reading.author}`].filter(Boolean).join(' ')}</p>
          {reading.sections.map((s, i) => <CdaSectionView key={i} section={s} level={4} />)}
          <button type="button" class="secondary" onClick={() => setReading(undefined)}>Close the document</button>
        </article>
      )}
    </Section>
  );
}
