/* eslint-disable @typescript-eslint/no-explicit-any */
import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { Resource } from '../fhir.js';
import { abnormalFlag, concept, date, observationValue, referenceRange, when } from '../format.js';
import { CONFLICT_LABELS, conflictsOf } from '../merged.js';
import { Empty, Section, useFirst } from '../ui.js';
import { TrendChart, type TrendPoint } from './TrendChart.js';

/** A fact's sources (badges, each opening its original): built by the page, which knows the person's sources. */
export type Badge = (r: Resource) => JSX.Element;

/** Results whose trend is shown first when present: HbA1c, eGFR, creatinine, blood pressure, weight. */
const PREFERRED_TRENDS = ['4548-4', '33914-3', '62238-1', '2160-0', '8480-6', '8462-4', '29463-7'];

/** Where the sources disagree (the merged record's conflicts), said in words, for a table cell. */
export function ConflictNote({ fact }: { fact: Resource }) {
  const conflicts = conflictsOf(fact);
  if (!conflicts.length) return null;
  return (
    <span class="conflict-note">
      <strong>Sources disagree:</strong> {conflicts.map((c) => `${CONFLICT_LABELS[c.kind] ?? c.kind}${c.detail ? ` (${c.detail})` : ''}`).join('; ')}
    </span>
  );
}

export function FactList({ title, column, id, items, label, detail, badge }: { title: string; column: string; id: string; items?: Resource[]; label: (r: Resource) => string; detail: (r: Resource) => string; badge: Badge }) {
  const list = items ?? [];
  const conflicted = list.filter((r) => conflictsOf(r).length).length;
  const { shown, more } = useFirst(list);
  return (
    <Section title={title} id={id} count={list.length}>
      {conflicted > 0 && <p class="conflict-summary">{conflicted} {conflicted === 1 ? 'entry is' : 'entries are'} recorded differently by different sources (highlighted).</p>}
      {list.length ? (
        <table>
          <caption class="sr-only">{title}, newest first, each once with every source that recorded it</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">{column}</th><th scope="col">Status</th><th scope="col">Sources</th></tr></thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.id} class={conflictsOf(r).length ? 'conflict' : undefined}>
                <td>{date(when(r))}</td><td>{label(r)} <ConflictNote fact={r} /></td><td>{detail(r)}</td><td>{badge(r)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what={title.toLowerCase()} />}
      {more}
    </Section>
  );
}

export function Encounters({ items, badge }: { items: Resource[]; badge: Badge }) {
  const { shown, more } = useFirst(items);
  return (
    <Section title="Encounters across organizations" id="encounters" count={items.length}>
      {items.length ? (
        <table>
          <caption class="sr-only">Encounters, newest first</caption>
          <thead><tr><th scope="col">Date</th><th scope="col">Type</th><th scope="col">Class</th><th scope="col">Sources</th></tr></thead>
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
    const coding = code?.coding?.find((c: any) => c.system === 'http://loinc.org') ?? code?.coding?.[0];
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

export function Results({ all, badge }: { all: Resource[]; badge: Badge }) {
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
          <thead><tr><th scope="col">Date</th><th scope="col">Test</th><th scope="col">Value</th><th scope="col">Flag</th><th scope="col">Reference range</th><th scope="col">Sources</th></tr></thead>
          <tbody>
            {shown.map((o) => {
              const flag = abnormalFlag(o);
              return (
                <tr key={o.id} class={conflictsOf(o).length ? 'conflict' : flag ? 'abnormal' : undefined}>
                  <td>{date(when(o))}</td><td>{concept(o.code)} <ConflictNote fact={o} /></td><td>{observationValue(o)}</td>
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

/**
 * Who else cares for this patient: the organizations and practitioners the person's record names
 * (encounters' providers and participants, requesters, performers), with their latest involvement.
 */
export function CareTeam({ facts, referenced }: { facts: Resource[]; referenced: Map<string, Resource> }) {
  const team = useMemo(() => {
    const seen = new Map<string, { name: string; kind: string; last: string; count: number }>();
    const note = (ref: any, kind: string, at: string) => {
      const key = ref?.reference;
      if (!key || !/^(Organization|Practitioner|PractitionerRole)\//.test(key)) return;
      const r = referenced.get(key);
      const name = ref.display ?? (r ? (r.name?.[0] ? [...(r.name[0].given ?? []), r.name[0].family].filter(Boolean).join(' ') || r.name[0].text : r.name) : undefined);
      if (!name) return;
      const e = seen.get(name) ?? { name, kind, last: '', count: 0 };
      e.count++;
      if (at > e.last) e.last = at;
      seen.set(name, e);
    };
    for (const f of facts) {
      const at = when(f);
      note(f.serviceProvider, 'Organization', at);
      for (const p of f.participant ?? []) note(p.individual, 'Practitioner', at);
      note(f.requester, 'Practitioner', at);
      note(f.recorder, 'Practitioner', at);
      for (const p of f.performer ?? []) note(p.actor ?? p, p.actor ? 'Practitioner' : 'Organization', at);
    }
    return [...seen.values()].sort((a, b) => b.last.localeCompare(a.last));
  }, [facts, referenced]);
  return (
    <Section title="Who else cares for this patient" id="care-team" count={team.length}>
      {team.length ? (
        <table>
          <caption class="sr-only">Organizations and practitioners in the record, most recent first</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Latest</th><th scope="col">Entries</th></tr></thead>
          <tbody>
            {team.slice(0, 30).map((t) => (
              <tr key={t.name}><td>{t.name}</td><td>{t.kind}</td><td>{date(t.last)}</td><td>{t.count}</td></tr>
            ))}
          </tbody>
        </table>
      ) : <Empty what="care team" />}
    </Section>
  );
}
