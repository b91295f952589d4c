/* eslint-disable @typescript-eslint/no-explicit-any */
import { useState } from 'preact/hooks';
import type { Api } from '../fhir.js';
import type { Session } from '../session.js';
import { Section } from '../ui.js';

const LOINC = 'http://loinc.org';
/** Tests a clinician may be about to order; the service decides which repeat a recent or pending one. */
const ORDERABLE = [
  { code: '4548-4', display: 'Hemoglobin A1c' },
  { code: '57698-3', display: 'Lipid panel with direct LDL' },
  { code: '24725-4', display: 'CT Head' },
  { code: '2160-0', display: 'Creatinine' },
];

interface Card {
  summary: string;
  detail?: string;
  indicator: string;
  source?: { label?: string };
}

/**
 * Duplicate-test alerts: the test the clinician is about to order goes to the exchange's CDS Hooks
 * service (order-select) as a draft order, with the user's own token, so the service reads the merged
 * record as this user may. Its cards are shown as they come.
 */
export function DuplicateCheck({ api, session, id }: { api: Api; session: Session; id: string }) {
  const [code, setCode] = useState(ORDERABLE[0].code);
  const [cards, setCards] = useState<Card[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const check = async (e: Event) => {
    e.preventDefault();
    const test = ORDERABLE.find((t) => t.code === code) ?? ORDERABLE[0];
    setBusy(true);
    setError(undefined);
    try {
      const draft = { resourceType: 'ServiceRequest', id: 'draft-1', status: 'draft', intent: 'order', code: { coding: [{ system: LOINC, code: test.code, display: test.display }], text: test.display }, subject: { reference: `Patient/${id}` } };
      const res = await api.postJson<{ cards?: Card[] }>('/cds-services/duplicate-orders-select', {
        hook: 'order-select',
        hookInstance: crypto.randomUUID(),
        context: { userId: session.fhirUser ?? '', patientId: id, selections: ['ServiceRequest/draft-1'], draftOrders: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: draft }] } },
      });
      setCards(res.cards ?? []);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="Duplicate-test check" id="duplicates">
      <form class="inline" onSubmit={check}>
        <label for="order-test">Test you are about to order</label>
        <select id="order-test" value={code} onChange={(e) => setCode((e.target as HTMLSelectElement).value)}>
          {ORDERABLE.map((t) => (
            <option key={t.code} value={t.code}>{t.display}</option>
          ))}
        </select>
        <button type="submit" disabled={busy}>Check for duplicates</button>
      </form>
      <div aria-live="polite">
        {error && <p class="error" role="alert">{error}</p>}
        {cards && !cards.length && <p class="ok">No duplicate found in the community record for this test.</p>}
        {cards?.map((c, i) => (
          <div key={i} class={`cds-card ${c.indicator}`}>
            <h3>{c.indicator === 'warning' ? 'Warning: ' : c.indicator === 'critical' ? 'Critical: ' : ''}{c.summary}</h3>
            {c.detail && <p class="detail">{c.detail.replace(/\*\*/g, '')}</p>}
            {c.source?.label && <p class="note">From {c.source.label}</p>}
          </div>
        ))}
      </div>
    </Section>
  );
}
