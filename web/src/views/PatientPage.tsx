import type { ComponentChildren } from 'preact';
import { useMemo, useRef, useState } from 'preact/hooks';
import type { Api, Resource } from '../fhir.js';
import { ApiError } from '../fhir.js';
import { abnormalFlag, address, age, concept, date, humanName, isGolden, observationValue, referenceRange, when } from '../format.js';
import type { Session } from '../session.js';
import { Empty, ErrorNote, Loading, NotAvailable, Section, useFirst, useLoad } from '../ui.js';
import { TrendChart, type TrendPoint } from './TrendChart.js';

/** Results whose trend is shown first when present: HbA1c, eGFR, creatinine, blood pressure, weight. */
const PREFERRED_TRENDS = ['4548-4', '33914-3', '62238-1', '2160-0', '8480-6', '8462-4', '29463-7'];

type ByType = Record<string, Resource[]>;

function group(all: Resource[]): ByType {
  const out: ByType = {};
  for (const r of all) (out[r.resourceType] ??= []).push(r);
  for (const list of Object.values(out)) list.sort((a, b) => when(b).localeCompare(when(a)));
  return out;
}

/** Which organization a fact came from: its own organization reference, else its source patient record's. */
function sourceFinder(patients: Resource[]) {
  const byPatient = new Map<string, string>();
  for (const p of patients) if (!isGolden(p)) byPatient.set(`Patient/${p.id}`, p.managingOrganization?.display ?? p.identifier?.[0]?.assigner?.display ?? p.identifier?.[0]?.system ?? 'unknown source');
  return (r: Resource): string =>
    r.serviceProvider?.display ??
    r.managingOrganization?.display ??
    r.performer?.find((p: any) => p.display)?.display ??
    byPatient.get(r.subject?.reference ?? r.patient?.reference ?? '') ??
    (r.meta?.source ? r.meta.source : 'unknown source');
}

export function PatientPage({ api, session, id, children }: { api: Api; session: Session; id: string; children?: ComponentChildren }) {
  const load = useLoad(() => api.all(`Patient/${encodeURIComponent(id)}/$everything?_view=sources&_count=5000`), [id]);
  const [original, setOriginal] = useState<Resource | undefined>();
  const dialog = useRef<HTMLDialogElement>(null);
  const showOriginal = (r: Resource) => {
    setOriginal(r);
    dialog.current?.showModal();
  };
  if (load.loading && !load.data) return <main id="main"><Loading what="the patient's record" /></main>;
  if (load.error) {
    const denied = load.error instanceof ApiError && (load.error.status === 404 || load.error.status === 403);
    return (
      <main id="main">
        <h1>Patient record</h1>
        {denied ? <p class="error" role="alert">This record is not available to you: it does not exist, or the patient's consent or its sensitivity withholds it.</p> : <ErrorNote error={load.error} />}
        {denied && session.role === 'clinician' && <BreakTheGlass api={api} id={id} onGranted={load.reload} />}
      </main>
    );
  }
  const by = group(load.data ?? []);
  const patients = by.Patient ?? [];
  const person = patients.find((p) => p.id === id) ?? patients[0];
  const sources = patients.filter((p) => !isGolden(p));
  const sourceOf = sourceFinder(patients);
  const badge = (r: Resource) => (
    <span class="source">
      <span class="badge">{sourceOf(r)}</span>{' '}
      <button type="button" class="link" onClick={() => showOriginal(r)} aria-label={`Original ${r.resourceType} from ${sourceOf(r)}`}>
        original
      </button>
    </span>
  );
  return (
    <main id="main">
      <h1>{person ? humanName(person.name) : 'Patient'}</h1>
      {person && (
        <p class="demographics">
          <span>{person.gender ?? 'sex unknown'}</span> · <span>born {person.birthDate ?? 'unknown'} ({age(person.birthDate)} years)</span> · <span>{address(person.address)}</span>
        </p>
      )}
      {session.role === 'clinician' && <BreakTheGlass api={api} id={id} onGranted={load.reload} compact />}
      <Section title="Sources of this record" id="sources" count={sources.length}>
        <ul class="plain">
          {sources.map((p) => (
            <li key={p.id}>
              <span class="badge">{sourceOf(p)}</span> {p.identifier?.find((i: any) => i.type?.coding?.some((c: any) => c.code === 'MR'))?.value ?? ''} · updated {date(p.meta?.lastUpdated)}
            </li>
          ))}
        </ul>
      </Section>
      <Results all={by.Observation ?? []} badge={badge} />
      <Encounters items={by.Encounter ?? []} badge={badge} />
      <FactList title="Problems" column="Problem" id="problems" items={by.Condition} label={(r) => concept(r.code)} detail={(r) => concept(r.clinicalStatus)} badge={badge} />
      <FactList title="Medications" column="Medication" id="medications" items={[...(by.MedicationRequest ?? []), ...(by.MedicationStatement ?? [])]} label={(r) => concept(r.medicationCodeableConcept) || r.medicationReference?.display || ''} detail={(r) => r.status ?? ''} badge={badge} />
      <FactList title="Allergies" column="Allergy" id="allergies" items={by.AllergyIntolerance} label={(r) => concept(r.code)} detail={(r) => (r.criticality ? `criticality ${r.criticality}` : '')} badge={badge} />
      <FactList title="Immunizations" column="Vaccine" id="immunizations" items={by.Immunization} label={(r) => concept(r.vaccineCode)} detail={(r) => r.status ?? ''} badge={badge} />
      <Documents api={api} items={by.DocumentReference ?? []} badge={badge} />
      <Section title="Duplicate-test alerts, source conflicts and care team" id="record-services">
        <NotAvailable what="Duplicate-test alerts, medication conflicts between sources and who else cares for this patient (the merged record service)" />
      </Section>
      {children}
      <dialog ref={dialog} aria-labelledby="original-h" onClose={() => setOriginal(undefined)}>
        <h2 id="original-h">Original {original?.resourceType}</h2>
        <p>
          From {original ? sourceOf(original) : ''}, last updated {date(original?.meta?.lastUpdated)}
        </p>
        <pre tabIndex={0}>{original ? JSON.stringify(original, null, 2) : ''}</pre>
        <button type="button" onClick={() => dialog.current?.close()}>Close</button>
      </dialog>
    </main>
  );
}

function Encounters({ items, badge }: { items: Resource[]; badge: (r: Resource) => preact.JSX.Element }) {
  const { shown, more } = useFirst(items);
  return (
    <Section title="Encounters across organizations" id="encounters" count={items.length}>
      {items.length ? (
        <table>
          <caption class="sr-only">Encounters, newest first</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">Type</th><th scope="col">Class</th><th scope="col">Source</th></tr></thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.id}><td>{date(when(e))}</td><td>{concept(e.type?.[0])}</td><td>{e.class?.code ?? ''}</td><td>{badge(e)}</td></tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what="encounters" />}
      {more}
    </Section>
  );
}

function FactList({ title, column, id, items, label, detail, badge }: { title: string; column: string; id: string; items?: Resource[]; label: (r: Resource) => string; detail: (r: Resource) => string; badge: (r: Resource) => preact.JSX.Element }) {
  const { shown, more } = useFirst(items ?? []);
  return (
    <Section title={title} id={id} count={items?.length ?? 0}>
      {items?.length ? (
        <table>
          <caption class="sr-only">{title}, newest first</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">{column}</th><th scope="col">Status</th><th scope="col">Source</th></tr></thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.id}><td>{date(when(r))}</td><td>{label(r)}</td><td>{detail(r)}</td><td>{badge(r)}</td></tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what={title.toLowerCase()} />}
      {more}
    </Section>
  );
}

interface Series {
  key: string;
  title: string;
  unit: string;
  points: TrendPoint[];
  low?: number;
  high?: number;
}

/** Numeric series by code (components of a panel, e.g. blood pressure, each as their own). */
function seriesOf(observations: Resource[]): Series[] {
  const map = new Map<string, Series>();
  const add = (code: any, q: any, t: string, o: Resource) => {
    const coding = code?.coding?.[0];
    if (!coding || typeof q?.value !== 'number' || !t) return;
    const key = coding.code as string;
    const s: Series = map.get(key) ?? { key, title: code.text ?? coding.display ?? key, unit: q.unit ?? q.code ?? '', points: [] };
    s.points.push({ time: Date.parse(t), value: q.value });
    const range = o.referenceRange?.[0];
    if (range?.low?.value !== undefined) s.low = range.low.value;
    if (range?.high?.value !== undefined) s.high = range.high.value;
    map.set(key, s);
  };
  for (const o of observations) {
    const t = when(o);
    add(o.code, o.valueQuantity, t, o);
    for (const c of o.component ?? []) add(c.code, c.valueQuantity, t, o);
  }
  const list = [...map.values()].filter((s) => s.points.length > 1);
  for (const s of list) s.points.sort((a, b) => a.time - b.time);
  const rank = (s: Series) => (PREFERRED_TRENDS.includes(s.key) ? PREFERRED_TRENDS.indexOf(s.key) : 100);
  return list.sort((a, b) => rank(a) - rank(b) || a.title.localeCompare(b.title));
}

function Results({ all, badge }: { all: Resource[]; badge: (r: Resource) => preact.JSX.Element }) {
  const labs = all.filter((o) => o.category?.some((c: any) => c.coding?.some((x: any) => x.code === 'laboratory')));
  const series = useMemo(() => seriesOf(all), [all]);
  const [chosen, setChosen] = useState<string | undefined>();
  const current = series.find((s) => s.key === chosen) ?? series[0];
  const { shown, more } = useFirst(labs);
  return (
    <Section title="Results" id="results" count={labs.length}>
      {current ? (
        <div class="trend-box">
          <label for="trend-choice">Trend</label>
          <select id="trend-choice" value={current.key} onChange={(e) => setChosen((e.target as HTMLSelectElement).value)}>
            {series.map((s) => (
              <option key={s.key} value={s.key}>{s.title}</option>
            ))}
          </select>
          <TrendChart title={current.title} unit={current.unit} points={current.points} low={current.low} high={current.high} />
        </div>
      ) : <p>No result has values enough for a trend.</p>}
      {labs.length ? (
        <table class="results">
          <caption class="sr-only">Laboratory results, newest first</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">Test</th><th scope="col">Value</th><th scope="col">Flag</th><th scope="col">Reference range</th><th scope="col">Source</th></tr></thead>
          <tbody>
            {shown.map((o) => {
              const flag = abnormalFlag(o);
              return (
                <tr key={o.id} class={flag ? 'abnormal' : undefined}>
                  <td>{date(when(o))}</td><td>{concept(o.code)}</td><td>{observationValue(o)}</td>
                  <td>{flag && <strong aria-label={flag === 'H' ? 'high' : flag === 'L' ? 'low' : `abnormal (${flag})`}>{flag}</strong>}</td>
                  <td>{referenceRange(o)}</td><td>{badge(o)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : <Empty what="laboratory results" />}
      {more}
    </Section>
  );
}

function Documents({ api, items, badge }: { api: Api; items: Resource[]; badge: (r: Resource) => preact.JSX.Element }) {
  const [error, setError] = useState<string | undefined>();
  const download = async (r: Resource) => {
    const att = r.content?.[0]?.attachment;
    setError(undefined);
    try {
      if (att?.url) await api.download(att.url, `${r.id}.${att.contentType?.includes('xml') ? 'xml' : 'txt'}`);
      else if (att?.data) {
        const a = document.createElement('a');
        a.href = URL.createObjectURL(new Blob([Uint8Array.from(atob(att.data), (c) => c.charCodeAt(0))], { type: att.contentType ?? 'application/octet-stream' }));
        a.download = `${r.id}.${att.contentType?.includes('xml') ? 'xml' : 'txt'}`;
        a.click();
      } else setError('This document has no content attached.');
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Section title="Documents" id="documents" count={items.length}>
      {error && <p class="error" role="alert">{error}</p>}
      {items.length ? (
        <table>
          <caption class="sr-only">Documents, newest first</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">Document</th><th scope="col">Source</th><th scope="col">Original</th></tr></thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.id}>
                <td>{date(when(r))}</td><td>{concept(r.type) || r.description || 'Document'}</td><td>{badge(r)}</td>
                <td><button type="button" onClick={() => download(r)}>Download</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what="documents" />}
      <p class="note">Readable rendering of C-CDA documents: not available yet; the original can be downloaded.</p>
    </Section>
  );
}

/** Emergency access: a clinician declares break-the-glass with a reason (audited, reviewed by privacy officers). */
function BreakTheGlass({ api, id, onGranted, compact }: { api: Api; id: string; onGranted: () => void; compact?: boolean }) {
  const [open, setOpen] = useState(!compact);
  const [reason, setReason] = useState('');
  const [message, setMessage] = useState<{ error?: string; ok?: string }>({});
  if (!open) {
    return (
      <p>
        <button type="button" class="secondary" onClick={() => setOpen(true)}>Emergency access (break the glass)…</button>
      </p>
    );
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!reason.trim()) return setMessage({ error: 'Give the reason for emergency access.' });
    try {
      const res = await api.post(`Patient/${encodeURIComponent(id)}/$break-the-glass`, { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: reason.trim() }] });
      const expires = res.parameter?.find((p: any) => p.name === 'expires');
      setMessage({ ok: `Emergency access granted until ${expires?.valueInstant ?? expires?.valueDateTime ?? 'its expiry'}. It is recorded and reviewed.` });
      onGranted();
    } catch (err) {
      setMessage({ error: (err as Error).message });
    }
  };
  return (
    <form class="btg card" onSubmit={submit}>
      <h2>Emergency access</h2>
      <p>Break the glass only when the patient's care needs it now. Your reason is recorded and reviewed by a privacy officer; access lasts 60 minutes.</p>
      <label for="btg-reason">Reason</label>
      <textarea id="btg-reason" maxLength={1000} value={reason} onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)} />
      <button type="submit">Break the glass</button>
      {message.error && <p class="error" role="alert">{message.error}</p>}
      {message.ok && <p class="ok" role="status">{message.ok}</p>}
    </form>
  );
}
