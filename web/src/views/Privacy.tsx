import { useState } from 'preact/hooks';
import type { Api, Resource } from '../fhir.js';
import { resources } from '../fhir.js';
import { records } from '../params.js';
import { ErrorNote, Empty, Loading, Section, useLoad } from '../ui.js';
import { ConsentList, Disclosures } from './PatientPrivacy.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** One AuditEvent as a row: when, who, what, which patient, why, outcome. */
function auditRow(e: Resource) {
  const user = e.agent?.find((a: any) => a.requestor) ?? e.agent?.[0];
  const patients = (e.entity ?? []).map((x: any) => x.what?.reference).filter((r: string | undefined) => r?.startsWith('Patient/'));
  return {
    id: e.id,
    when: (e.recorded ?? '').slice(0, 19).replace('T', ' '),
    who: user?.who?.reference ?? user?.who?.identifier?.value ?? '',
    what: `${e.action ?? ''} ${e.subtype?.map((s: any) => s.code).join(',') ?? ''}`,
    patients: patients.join(', '),
    purpose: e.purposeOfEvent?.map((p: any) => p.coding?.[0]?.code).join(',') ?? '',
    outcome: e.outcomeDesc ?? e.outcome ?? '',
  };
}

/** The privacy officer's desk: the audit log, break-the-glass review, a patient's consents and disclosures. */
export function Privacy({ api }: { api: Api }) {
  return (
    <main id="main">
      <h1>Privacy</h1>
      <AuditSearch api={api} />
      <BreakTheGlassReview api={api} />
      <PatientLookup api={api} />
    </main>
  );
}

function AuditSearch({ api }: { api: Api }) {
  const [form, setForm] = useState({ patient: '', agent: '', from: '', to: '' });
  const [rows, setRows] = useState<ReturnType<typeof auditRow>[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const criteria: Record<string, string> = { _count: '100' };
    if (form.patient.trim()) criteria.patient = form.patient.trim();
    if (form.agent.trim()) criteria.agent = form.agent.trim();
    const dates = [form.from && `ge${form.from}`, form.to && `le${form.to}T23:59:59Z`].filter(Boolean) as string[];
    try {
      // Two date bounds are two `date` parameters (AND): a form body can repeat a name.
      const body = new URLSearchParams(criteria);
      for (const d of dates) body.append('date', d);
      const bundle = await api.search('AuditEvent', Object.fromEntries(body) as Record<string, string>);
      let list = resources(bundle);
      if (dates.length === 2) list = list.filter((ev) => ev.recorded >= form.from && ev.recorded.slice(0, 10) <= form.to);
      setRows(list.map(auditRow));
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const field = (key: keyof typeof form) => ({ value: form[key], onInput: (e: Event) => setForm({ ...form, [key]: (e.target as HTMLInputElement).value }) });
  return (
    <Section title="Audit log" id="audit">
      <form class="search" onSubmit={submit}>
        <div class="fields">
          <div><label for="a-patient">Patient id</label><input id="a-patient" {...field('patient')} /></div>
          <div><label for="a-agent">Who (user, client or organization)</label><input id="a-agent" {...field('agent')} /></div>
          <div><label for="a-from">From</label><input id="a-from" type="date" {...field('from')} /></div>
          <div><label for="a-to">To</label><input id="a-to" type="date" {...field('to')} /></div>
        </div>
        <button type="submit">Search the audit log</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <div role="status" aria-live="polite" class="sr-status">{rows && `${rows.length} events`}</div>
      {rows && (rows.length ? (
        <table class="audit">
          <caption class="sr-only">Audit events, newest first</caption>
          <thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Patients</th><th scope="col">Purpose</th><th scope="col">Outcome</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}><td>{r.when}</td><td>{r.who}</td><td>{r.what}</td><td>{r.patients}</td><td>{r.purpose}</td><td>{r.outcome}</td></tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what="matching events" />)}
    </Section>
  );
}

function BreakTheGlassReview({ api }: { api: Api }) {
  const load = useLoad(() => api.get('Patient/$break-the-glass-review?status=unreviewed'), []);
  const [error, setError] = useState<string | undefined>();
  const review = async (grant: string) => {
    try {
      await api.post('Patient/$break-the-glass-review', { resourceType: 'Parameters', parameter: [{ name: 'grant', valueString: grant }] });
      load.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const grants = records(load.data, 'grant');
  return (
    <Section title="Break-the-glass to review" id="btg" count={load.data ? grants.length : undefined}>
      {load.loading && !load.data && <Loading what="emergency accesses" />}
      {load.error && <ErrorNote error={load.error} />}
      {error && <p class="error" role="alert">{error}</p>}
      {load.data && (grants.length ? (
        <table>
          <caption class="sr-only">Emergency accesses not yet reviewed</caption>
          <thead><tr><th scope="col">Granted</th><th scope="col">Who</th><th scope="col">Patient</th><th scope="col">Reason</th><th scope="col">Review</th></tr></thead>
          <tbody>
            {grants.map((g) => (
              <tr key={g.id}>
                <td>{g.granted.slice(0, 19).replace('T', ' ')}</td><td>{g.holder}</td><td>{g.patient}</td><td>{g.reason}</td>
                <td><button type="button" class="secondary" onClick={() => review(g.id)} aria-label={`Mark reviewed: ${g.holder} on ${g.patient}`}>Mark reviewed</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what="unreviewed emergency accesses" />)}
    </Section>
  );
}

function PatientLookup({ api }: { api: Api }) {
  const [input, setInput] = useState('');
  const [patient, setPatient] = useState<string | undefined>();
  return (
    <Section title="A patient's consents and disclosures" id="patient-privacy">
      <form class="search" onSubmit={(e) => (e.preventDefault(), setPatient(input.trim().replace(/^Patient\//, '') || undefined))}>
        <label for="p-id">Patient id</label>
        <input id="p-id" value={input} onInput={(e) => setInput((e.target as HTMLInputElement).value)} />
        <button type="submit">Show</button>
      </form>
      {patient && (
        <>
          {/* Privacy officers record a withdrawal the patient asked for on paper or by phone. */}
          <ConsentList api={api} patient={patient} onChange={() => undefined} />
          <Disclosures api={api} patient={patient} />
        </>
      )}
    </Section>
  );
}
