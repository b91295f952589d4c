import { useState } from 'preact/hooks';
import type { Api, Resource } from '../fhir.js';
import { address, humanName } from '../format.js';
import { records } from '../params.js';
import { Empty, ErrorNote, Loading, useLoad } from '../ui.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
interface Part {
  name: string;
  part?: Part[];
  valueReference?: { reference: string };
  valueDecimal?: number;
  valueCode?: string;
  valueString?: string;
  valueInstant?: string;
}
interface Pair {
  patient: string;
  other: string;
  enterprises: string[];
  score: number;
  opened: string;
  contributions: { field: string; level: string; weight: number }[];
  vetoes: string[];
  records: Resource[];
}

const value = (parts: Part[] | undefined, name: string) => parts?.find((p) => p.name === name);

function pairOf(parts: Part[]): Omit<Pair, 'records'> {
  return {
    patient: value(parts, 'patient')?.valueReference?.reference ?? '',
    other: value(parts, 'other')?.valueReference?.reference ?? '',
    enterprises: ['patientEnterprise', 'otherEnterprise'].map((n) => value(parts, n)?.valueReference?.reference).filter((r): r is string => !!r),
    score: value(parts, 'score')?.valueDecimal ?? 0,
    opened: value(parts, 'opened')?.valueInstant ?? '',
    contributions: parts.filter((p) => p.name === 'contribution').map((c) => ({ field: value(c.part, 'field')?.valueCode ?? '', level: value(c.part, 'level')?.valueCode ?? '', weight: value(c.part, 'weight')?.valueDecimal ?? 0 })),
    vetoes: parts.filter((p) => p.name === 'veto').map((p) => p.valueString ?? ''),
  };
}

/** The master patient index's review queue: both records side by side, why they may match, and the decision. */
export function StewardQueue({ api }: { api: Api }) {
  const load = useLoad(async () => {
    const queue = await api.get<{ parameter?: Part[] }>('Patient/$mpi-review-queue?status=open&_count=20');
    const pairs = (queue.parameter ?? []).filter((p) => p.name === 'pair').map((p) => pairOf(p.part ?? []));
    return Promise.all(pairs.map(async (p) => ({ ...p, records: await Promise.all([api.get(p.patient), api.get(p.other)]) }) as Pair));
  }, []);
  return (
    <main id="main">
      <h1>Identity review queue</h1>
      <p>Pairs of records the master patient index finds possibly the same person. Decide each: the same person (their records join one enterprise) or not a match (never linked again).</p>
      {load.loading && !load.data && <Loading what="the review queue" />}
      {load.error && <ErrorNote error={load.error} />}
      {load.data && !load.data.length && <Empty what="open pairs" />}
      {load.data?.map((pair) => <PairView key={pair.patient + pair.other} api={api} pair={pair} onDecided={load.reload} />)}
      <SourceConflicts api={api} />
    </main>
  );
}

const FIELDS: [string, (p: Resource) => string][] = [
  ['Name', (p) => humanName(p.name)],
  ['Sex', (p) => p.gender ?? ''],
  ['Birth date', (p) => p.birthDate ?? ''],
  ['Address', (p) => address(p.address)],
  ['Phone', (p) => p.telecom?.map((t: any) => t.value).join(', ') ?? ''],
  ['Identifiers', (p) => p.identifier?.map((i: any) => `${i.value} (${i.system})`).join('; ') ?? ''],
];

function PairView({ api, pair, onDecided }: { api: Api; pair: Pair; onDecided: () => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>();
  const id = `pair-${pair.patient.split('/')[1]}`;
  const decide = async (decision: 'accept' | 'reject') => {
    if (!reason.trim()) return setError('Give the reason for your decision (it is kept in the identity history).');
    try {
      await api.post('Patient/$mpi-review', {
        resourceType: 'Parameters',
        parameter: [
          { name: 'patient', valueReference: { reference: pair.patient } },
          { name: 'other', valueReference: { reference: pair.other } },
          { name: 'decision', valueString: decision },
          { name: 'reason', valueString: reason.trim() },
        ],
      });
      onDecided();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section class="card" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>
        {humanName(pair.records[0].name)} and {humanName(pair.records[1].name)} <span class="count">score {pair.score}</span>
      </h2>
      <table>
        <caption class="sr-only">Both records side by side</caption>
        <thead>
          <tr><th scope="col">Field</th><th scope="col">Record 1</th><th scope="col">Record 2</th></tr>
        </thead>
        <tbody>
          {FIELDS.map(([label, get]) => (
            <tr key={label}><th scope="row">{label}</th><td>{get(pair.records[0])}</td><td>{get(pair.records[1])}</td></tr>
          ))}
        </tbody>
      </table>
      <table>
        <caption>Agreement per field</caption>
        <thead><tr><th scope="col">Field</th><th scope="col">Agreement</th><th scope="col">Weight</th></tr></thead>
        <tbody>
          {pair.contributions.map((c) => (
            <tr key={c.field}><td>{c.field}</td><td class={c.weight >= 0 ? 'agree' : 'disagree'}>{c.level}</td><td>{c.weight}</td></tr>
          ))}
        </tbody>
      </table>
      {pair.vetoes.length > 0 && <p>Vetoes: {pair.vetoes.join('; ')}</p>}
      <p>
        Open an identity for any decision (unlink, link, merge):{' '}
        {pair.enterprises.map((e, i) => (
          <span key={e}>{i ? ', ' : ''}<a href={`#/identity/${e.replace(/^Patient\//, '')}`}>{`identity ${i + 1}`}</a></span>
        ))}
      </p>
      <details>
        <summary>History of these identities</summary>
        <IdentityHistory api={api} enterprises={pair.enterprises} />
      </details>
      <label for={`${id}-reason`}>Reason</label>
      <input id={`${id}-reason`} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      <div class="actions">
        <button type="button" onClick={() => decide('accept')}>Same person: link</button>{' '}
        <button type="button" class="secondary" onClick={() => decide('reject')}>Not a match</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}

/** Each enterprise's event log ($mpi-events): created, linked, reviewed, merged…, with who and why. */
export function IdentityHistory({ api, enterprises }: { api: Api; enterprises: string[] }) {
  const load = useLoad(async () => {
    const lists = await Promise.all(enterprises.map((e) => api.get(`Patient/$mpi-events?enterprise=${encodeURIComponent(e.replace(/^Patient\//, ''))}&_count=50`)));
    return lists.flatMap((l) => records(l, 'event')).sort((a, b) => Number(a.seq) - Number(b.seq));
  }, [enterprises.join()]);
  if (load.loading && !load.data) return <Loading what="the history" />;
  if (load.error) return <ErrorNote error={load.error} />;
  return load.data?.length ? (
    <table>
      <caption class="sr-only">Identity events, oldest first</caption>
      <thead><tr><th scope="col">When (UTC)</th><th scope="col">Event</th><th scope="col">Record</th><th scope="col">By</th><th scope="col">Reason</th></tr></thead>
      <tbody>
        {load.data.map((e) => (
          <tr key={e.seq}><td>{e.at.slice(0, 19).replace('T', ' ')}</td><td>{e.action}</td><td>{e.patient}</td><td>{e.actor}</td><td>{e.reason}</td></tr>
        ))}
      </tbody>
    </table>
  ) : <Empty what="events" />;
}

/**
 * Source conflicts raised by ingestion: a source sent a record under an identifier another of its
 * records already holds with other demographics (docs/matching.md); a review pair opens for each.
 */
function SourceConflicts({ api }: { api: Api }) {
  const load = useLoad(async () => records(await api.get('Patient/$mpi-events?action=source-conflict&_count=100'), 'event').reverse(), []);
  return (
    <section class="card" aria-labelledby="conflicts-h">
      <h2 id="conflicts-h">Source conflicts raised by ingestion{load.data ? <span class="count"> ({load.data.length})</span> : null}</h2>
      {load.loading && !load.data && <Loading what="the source conflicts" />}
      {load.error && <ErrorNote error={load.error} />}
      {load.data && !load.data.length && <Empty what="source conflicts" />}
      {load.data && load.data.length > 0 && (
        <table>
          <caption class="sr-only">Source conflicts, newest first</caption>
          <thead><tr><th scope="col">When (UTC)</th><th scope="col">Record</th><th scope="col">Identity</th><th scope="col">Reason</th></tr></thead>
          <tbody>
            {load.data.map((e) => (
              <tr key={e.seq}>
                <td>{e.at.slice(0, 19).replace('T', ' ')}</td>
                <td>{e.patient}</td>
                <td>{e.enterprise ? <a href={`#/identity/${e.enterprise.replace(/^Patient\//, '')}`}>{e.enterprise}</a> : ''}</td>
                <td>{e.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
