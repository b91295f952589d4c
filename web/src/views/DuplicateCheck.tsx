import { useState } from 'preact/hooks';
import type { Api } from '../fhir.js';
import type { Session } from '../session.js';
import { ErrorNote, Section, useLoad } from '../ui.js';

/** The CDS service's discovery extension naming the tests it recognises as duplicates (the community's list). */
const EQUIVALENCES = 'dev.tessera.test-equivalences';
const SERVICE = 'duplicate-orders-select';

/** A test a clinician may be about to order: one group of the service's equivalences. */
interface Orderable {
  id: string;
  name: string;
  codes: { system: string; code: string; display?: string }[];
}

/** The tests the duplicate-order service knows, from its discovery (`GET /cds-services`). */
async function orderableTests(api: Api): Promise<Orderable[]> {
  const { services } = await api.get<{ services: { id: string; extension?: Record<string, Orderable[]> }[] }>('/cds-services');
  return (services.find((s) => s.id === SERVICE)?.extension?.[EQUIVALENCES] ?? []).filter((t) => t.codes?.length);
}

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
  const tests = useLoad(() => orderableTests(api), [api]);
  const [chosen, setChosen] = useState<string | undefined>();
  const [cards, setCards] = useState<Card[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const list = tests.data ?? [];
  const test = list.find((t) => t.id === chosen) ?? list[0];
  const check = async (e: Event) => {
    e.preventDefault();
    if (!test) return;
    setBusy(true);
    setError(undefined);
    try {
      // The draft order carries the group's first code (the service matches any code of the group).
      const coding = { ...test.codes[0], display: test.codes[0].display ?? test.name };
      const draft = { resourceType: 'ServiceRequest', id: 'draft-1', status: 'draft', intent: 'order', code: { coding: [coding], text: test.name }, subject: { reference: `Patient/${id}` } };
      const res = await api.postJson<{ cards?: Card[] }>(`/cds-services/${SERVICE}`, {
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
  if (tests.error) return <Section title="Duplicate-test check" id="duplicates"><ErrorNote error={tests.error} /></Section>;
  return (
    <Section title="Duplicate-test check" id="duplicates">
      <form class="inline" onSubmit={check}>
        <label for="order-test">Test you are about to order</label>
        <select id="order-test" value={test?.id ?? ''} onChange={(e) => (setChosen((e.target as HTMLSelectElement).value), setCards(undefined))}>
          {list.map((t) => (
            <option key={t.id} value={t.id}>{t.name}</option>
          ))}
        </select>
        <button type="submit" disabled={busy || !test}>Check for duplicates</button>
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
