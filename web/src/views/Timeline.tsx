/* eslint-disable @typescript-eslint/no-explicit-any */
import { useState } from 'preact/hooks';
import type { Api, Bundle, Resource } from '../fhir.js';
import { resources } from '../fhir.js';
import { concept, date, observationValue, when } from '../format.js';
import { Section } from '../ui.js';
import type { Badge } from './RecordSections.js';

const KINDS: Record<string, string> = {
  Encounter: 'Encounter',
  Observation: 'Result',
  DiagnosticReport: 'Report',
  DocumentReference: 'Document',
  Procedure: 'Procedure',
  Immunization: 'Immunization',
};

function describe(r: Resource): string {
  if (r.resourceType === 'Encounter') return [concept(r.type?.[0]) || r.class?.display || r.class?.code, r.serviceProvider?.display].filter(Boolean).join(', ');
  if (r.resourceType === 'Observation') return `${concept(r.code)} ${observationValue(r)}`.trim();
  if (r.resourceType === 'Immunization') return concept(r.vaccineCode);
  return concept(r.code) || concept(r.type) || r.description || '';
}

/**
 * The person's timeline across organizations (`$timeline`, most recent first, 50 at a time). Loaded when
 * opened: the server merges the record again for it, which the first view of the page does not wait for.
 */
export function Timeline({ api, id, badge }: { api: Api; id: string; badge: Badge }) {
  const [events, setEvents] = useState<Resource[] | undefined>();
  const [next, setNext] = useState<string | undefined>();
  const [total, setTotal] = useState<number | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const load = async (url: string, append: boolean) => {
    setBusy(true);
    setError(undefined);
    try {
      const page = await api.get<Bundle>(url);
      setEvents((old) => [...(append ? (old ?? []) : []), ...resources(page)]);
      setNext(page.link?.find((l) => l.relation === 'next')?.url);
      setTotal(page.total);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="Timeline across organizations" id="timeline" count={total}>
      {events === undefined ? (
        <button type="button" class="secondary" disabled={busy} onClick={() => load(`Patient/${encodeURIComponent(id)}/$timeline?_sort=-date&_count=50`, false)}>
          {busy ? 'Loading the timeline…' : 'Show the timeline'}
        </button>
      ) : (
        <ol class="timeline">
          {events.map((r) => (
            <li key={`${r.resourceType}/${r.id}`}>
              <span class="when">{date(when(r))}</span> <span class="kind">{KINDS[r.resourceType] ?? r.resourceType}</span> {describe(r)} {badge(r)}
            </li>
          ))}
        </ol>
      )}
      {next && (
        <button type="button" class="secondary" disabled={busy} onClick={() => load(next, true)}>
          Older events
        </button>
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </Section>
  );
}
