/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Api, Resource } from '../fhir.js';
import { resources } from '../fhir.js';
import { partValue, type Part } from '../params.js';
import { Empty, ErrorNote, Loading, Section, useLoad } from '../ui.js';

interface Status {
  subscription: Resource;
  facts: Record<string, string>;
}

/**
 * Subscriptions and how their deliveries fare (`Subscription/$status`, every one at once: backlog, delivered, dead
 * letters, withheld, last error, latency), as far as the user may read them.
 */
export function Subscriptions({ api }: { api: Api }) {
  const load = useLoad(async (): Promise<Status[]> => {
    // Two requests whatever their number: the Subscriptions, and every status at once (type-level $status).
    const [subscriptions, statuses] = await Promise.all([api.get('Subscription?_count=100').then(resources), api.get('Subscription/$status').then(resources)]);
    const byReference = new Map<string, Record<string, string>>();
    for (const status of statuses as { parameter?: Part[] }[]) {
      const facts = Object.fromEntries((status.parameter ?? []).filter((p) => !p.part).map((p) => [p.name, partValue(p)]));
      if (facts.subscription) byReference.set(facts.subscription.replace(/^.*\/(Subscription\/[^/]+)$/, '$1'), facts);
    }
    return subscriptions.map((subscription) => ({ subscription, facts: byReference.get(`Subscription/${subscription.id}`) ?? {} }));
  }, []);
  return (
    <Section title="Subscriptions" id="subscriptions" count={load.data?.length}>
      {load.loading && !load.data && <Loading what="the subscriptions" />}
      {load.error && <ErrorNote error={load.error} />}
      {load.data && !load.data.length && <Empty what="subscriptions" />}
      {load.data && load.data.length > 0 && (
        <table class="subscriptions">
          <caption class="sr-only">Subscriptions and their deliveries</caption>
          <thead><tr><th scope="col">Subscription</th><th scope="col">Channel</th><th scope="col">Status</th><th scope="col">Delivered</th><th scope="col">Backlog</th><th scope="col">Dead letters</th><th scope="col">Latency p50 / p95 (ms)</th><th scope="col">Last error</th></tr></thead>
          <tbody>
            {load.data.map(({ subscription: s, facts: f }) => (
              <tr key={s.id}>
                <td>{s.reason ?? s.id}</td>
                <td>{s.channel?.type ?? ''}</td>
                <td class={s.status === 'error' ? 'disagree' : undefined}>{f.status ?? s.status ?? ''}</td>
                <td>{f.delivered ?? ''}</td>
                <td>{f.backlog ?? ''}</td>
                <td class={Number(f['dead-letters'] ?? 0) > 0 ? 'disagree' : undefined}>{f['dead-letters'] ?? ''}</td>
                <td>{f['latency-p50-ms'] ? `${f['latency-p50-ms']} / ${f['latency-p95-ms']}` : ''}</td>
                <td>{f['last-error'] ?? s.error ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
