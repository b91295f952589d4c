import { useState } from 'preact/hooks';
import type { Api, Resource } from '../fhir.js';
import { resources } from '../fhir.js';
import { concept } from '../format.js';
import { records } from '../params.js';
import { Empty, ErrorNote, Loading, useLoad } from '../ui.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** What a Consent says, in words. */
function describe(c: Resource): string {
  const p = c.provision ?? {};
  const type = p.type ?? (['OPTOUT', 'OPTOUTE'].includes(c.policyRule?.coding?.[0]?.code) ? 'deny' : 'permit');
  const actors = (p.actor ?? []).map((a: any) => a.reference?.display ?? a.reference?.reference).filter(Boolean);
  const verb = type === 'deny' ? 'Do not share' : 'Share';
  return `${verb} ${actors.length ? `with ${actors.join(', ')}` : 'with anyone in the community'}${p.securityLabel?.length ? ` (${p.securityLabel.map((l: any) => l.code).join(', ')})` : ''}`;
}

export function ConsentList({ api, patient, onChange }: { api: Api; patient: string; onChange?: () => void }) {
  const load = useLoad(async () => resources(await api.search('Consent', { patient: `Patient/${patient}`, _count: '100' })), [patient]);
  const [error, setError] = useState<string | undefined>();
  const revoke = async (c: Resource) => {
    try {
      await api.put(`Consent/${c.id}`, { ...c, status: 'inactive' });
      load.reload();
      onChange?.();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <div>
      <h3>Consents</h3>
      {load.loading && !load.data && <Loading what="consents" />}
      {load.error && <ErrorNote error={load.error} />}
      {error && <p class="error" role="alert">{error}</p>}
      {load.data && (load.data.length ? (
        <table>
          <caption class="sr-only">Privacy consents</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">Choice</th><th scope="col">Status</th><th scope="col">Change</th></tr></thead>
          <tbody>
            {load.data.map((c) => (
              <tr key={c.id}>
                <td>{(c.dateTime ?? c.meta?.lastUpdated ?? '').slice(0, 10)}</td><td>{describe(c)}</td><td>{c.status}</td>
                <td>{c.status === 'active' && onChange && <button type="button" class="secondary" onClick={() => revoke(c)}>Withdraw</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what={`consents (the community default applies)`} />)}
    </div>
  );
}

export function Disclosures({ api, patient }: { api: Api; patient: string }) {
  const load = useLoad(() => api.get(`Patient/${encodeURIComponent(patient)}/$disclosures?_count=100`), [patient]);
  const list = records(load.data, 'disclosure');
  return (
    <div>
      <h3>Who accessed the record</h3>
      {load.loading && !load.data && <Loading what="disclosures" />}
      {load.error && <ErrorNote error={load.error} />}
      {load.data && (list.length ? (
        <table class="disclosures">
          <caption class="sr-only">Accesses, newest first</caption>
          <thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">Organization</th><th scope="col">Purpose</th><th scope="col">What</th></tr></thead>
          <tbody>
            {list.map((d) => (
              <tr key={d.event}><td>{d.when.slice(0, 19).replace('T', ' ')}</td><td>{d.who}</td><td>{d.organization}</td><td>{d.purpose}</td><td>{d.interaction}: {d.what}</td></tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what="accesses" />)}
    </div>
  );
}

/** A patient's own choices: opt out of sharing altogether, or deny one organization. */
export function ConsentChoices({ api, patient, onDone }: { api: Api; patient: string; onDone: () => void }) {
  const orgs = useLoad(async () => resources(await api.search('Organization', { _count: '100' })), []);
  const [org, setOrg] = useState('');
  const [note, setNote] = useState<{ error?: string; ok?: string }>({});
  const record = async (provision: any, what: string) => {
    try {
      await api.post('Consent', {
        resourceType: 'Consent',
        status: 'active',
        scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
        category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
        patient: { reference: `Patient/${patient}` },
        dateTime: new Date().toISOString(),
        policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] },
        provision,
      });
      setNote({ ok: `Recorded: ${what}. It applies from now on.` });
      onDone();
    } catch (err) {
      setNote({ error: (err as Error).message });
    }
  };
  return (
    <div class="card">
      <h3>Change who may see your record</h3>
      <button type="button" onClick={() => record({ type: 'deny' }, 'your record is not shared')}>Opt out of sharing</button>
      <form onSubmit={(e) => (e.preventDefault(), org && record({ type: 'deny', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: org, display: concept({ text: orgs.data?.find((o) => `Organization/${o.id}` === org)?.name }) } }] }, 'that organization may not see your record'))}>
        <label for="deny-org">Deny one organization</label>
        <select id="deny-org" value={org} onChange={(e) => setOrg((e.target as HTMLSelectElement).value)}>
          <option value="">Choose an organization</option>
          {orgs.data?.map((o) => <option key={o.id} value={`Organization/${o.id}`}>{o.name}</option>)}
        </select>
        <button type="submit" class="secondary">Deny this organization</button>
      </form>
      {note.error && <p class="error" role="alert">{note.error}</p>}
      {note.ok && <p class="ok" role="status">{note.ok}</p>}
    </div>
  );
}
