/* eslint-disable @typescript-eslint/no-explicit-any */
import { useState } from 'preact/hooks';
import type { Api, Resource } from '../fhir.js';
import { resources } from '../fhir.js';
import { address, humanName, isGolden } from '../format.js';
import { go } from '../router.js';
import { Empty, ErrorNote, Loading, Section, useLoad } from '../ui.js';
import { IdentityHistory } from './StewardQueue.js';

const ref = (id: string) => ({ reference: `Patient/${id.replace(/^Patient\//, '')}` });
const idOf = (reference: string | undefined) => (reference ?? '').replace(/^Patient\//, '');

/** The enterprise (golden) record of any Patient id: itself when it is one, else the one that links it. */
async function enterpriseOf(api: Api, id: string): Promise<{ golden: Resource; sources: Resource[] }> {
  const record = await api.get<Resource>(`Patient/${encodeURIComponent(id)}`);
  let golden = record;
  if (!isGolden(record)) {
    const found = resources(await api.search('Patient', { link: `Patient/${id}`, _count: '1' }));
    if (!found[0]) throw new Error('This record belongs to no enterprise identity (the master patient index may be off).');
    golden = found[0];
  }
  const links: string[] = (golden.link ?? []).map((l: any) => l.other?.reference).filter(Boolean);
  const sources = (await Promise.all(links.map((r) => api.get<Resource>(r).catch(() => undefined)))).filter((p): p is Resource => !!p);
  return { golden, sources };
}

/**
 * The steward's desk for any identity (not only queue pairs): an enterprise with its source records and
 * history, and the decisions on it: unlink a source record, link any record into it, merge another
 * enterprise into it, undo a merge. Each needs a reason, kept in the identity history.
 */
export function StewardIdentity({ api, id }: { api: Api; id?: string }) {
  const [wanted, setWanted] = useState(id ?? '');
  return (
    <main id="main">
      <h1>Identities</h1>
      <form
        class="inline card"
        onSubmit={(e) => {
          e.preventDefault();
          if (wanted.trim()) go('identity', wanted.trim().replace(/^Patient\//, ''));
        }}
      >
        <label for="identity-id">Patient id (a source record or an enterprise record)</label>
        <input id="identity-id" value={wanted} onInput={(e) => setWanted((e.target as HTMLInputElement).value)} />
        <button type="submit">Open identity</button>
      </form>
      {id && <Identity key={id} api={api} id={id} />}
    </main>
  );
}

function Identity({ api, id }: { api: Api; id: string }) {
  const load = useLoad(() => enterpriseOf(api, id), [id]);
  const [note, setNote] = useState<{ error?: string; ok?: string }>({});
  if (load.loading && !load.data) return <Loading what="the identity" />;
  if (load.error || !load.data) return load.error ? <ErrorNote error={load.error} /> : null;
  const { golden, sources } = load.data;
  const enterprise = golden.id as string;
  const retired = golden.active === false;
  const act = async (operation: string, parameter: any[], done: string) => {
    setNote({});
    try {
      const res = await api.post(`Patient/$${operation}`, { resourceType: 'Parameters', parameter });
      const touched = (res.parameter ?? []).map((p: any) => p.resource?.id).filter(Boolean);
      setNote({ ok: `${done}. Identities changed: ${touched.join(', ') || 'none'}.` });
      load.reload();
    } catch (err) {
      setNote({ error: (err as Error).message });
    }
  };
  return (
    <>
      <Section title={`Enterprise identity ${humanName(golden.name)}`} id="enterprise">
        <p>
          Enterprise record <code>{enterprise}</code>
          {retired ? ' (merged into another identity: inactive)' : ''} · {golden.gender ?? 'sex unknown'} · born {golden.birthDate ?? 'unknown'} · {address(golden.address)}
        </p>
        {note.error && <p class="error" role="alert">{note.error}</p>}
        {note.ok && <p class="ok" role="status">{note.ok}</p>}
        {sources.length ? (
          <table class="members">
            <caption>Source records of this identity</caption>
            <thead><tr><th scope="col">Record</th><th scope="col">Organization</th><th scope="col">Name</th><th scope="col">Birth date</th><th scope="col">Identifiers</th><th scope="col">Decision</th></tr></thead>
            <tbody>
              {sources.map((p) => (
                <tr key={p.id}>
                  <td><code>{p.id}</code></td>
                  <td>{p.managingOrganization?.display ?? p.identifier?.find((i: any) => i.assigner?.display)?.assigner?.display ?? p.identifier?.[0]?.system ?? ''}</td>
                  <td>{humanName(p.name)}</td>
                  <td>{p.birthDate ?? ''}</td>
                  <td>{p.identifier?.map((i: any) => i.value).join(', ')}</td>
                  <td><Decision label={`Unlink ${p.id}`} button="Unlink" onDecide={(reason) => act('mpi-unlink', [{ name: 'patient', valueReference: ref(p.id as string) }, { name: 'reason', valueString: reason }], `Record ${p.id} unlinked into an identity of its own`)} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : <Empty what="source records" />}
      </Section>
      <Section title="Decisions on this identity" id="identity-decisions">
        <TwoFieldDecision
          id="link"
          legend="Link a record into this identity"
          field="Patient id of the record to link"
          button="Link record"
          onDecide={(other, reason) => act('mpi-link', [{ name: 'patient', valueReference: ref(other) }, { name: 'target', valueReference: ref(enterprise) }, { name: 'reason', valueString: reason }], `Record ${other} linked`)}
        />
        <TwoFieldDecision
          id="merge"
          legend="Merge another identity into this one"
          field="Enterprise id of the identity to merge in"
          button="Merge identities"
          onDecide={(other, reason) => act('mpi-merge', [{ name: 'source', valueReference: ref(other) }, { name: 'target', valueReference: ref(enterprise) }, { name: 'reason', valueString: reason }], `Identity ${other} merged into this one`)}
        />
        {retired && (
          <fieldset>
            <legend>Undo the merge of this identity</legend>
            <Decision label="Unmerge this identity" button="Unmerge" onDecide={(reason) => act('mpi-unmerge', [{ name: 'source', valueReference: ref(enterprise) }, { name: 'reason', valueString: reason }], 'Merge undone')} />
          </fieldset>
        )}
      </Section>
      <Section title="History of this identity" id="identity-history">
        <IdentityHistory key={`${enterprise}|${note.ok ?? ''}`} api={api} enterprises={[`Patient/${enterprise}`]} />
        {golden.link?.some((l: any) => l.type === 'replaced-by') && (
          <p>
            Replaced by{' '}
            <a href={`#/identity/${idOf(golden.link.find((l: any) => l.type === 'replaced-by').other?.reference)}`}>{idOf(golden.link.find((l: any) => l.type === 'replaced-by').other?.reference)}</a>
          </p>
        )}
      </Section>
    </>
  );
}

/** A decision needing only a reason (unlink, unmerge). */
function Decision({ label, button, onDecide }: { label: string; button: string; onDecide: (reason: string) => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>();
  const fieldId = `reason-${label.replace(/\W+/g, '-')}`;
  return (
    <div class="decision">
      <label for={fieldId}>Reason ({label.toLowerCase()})</label>
      <input id={fieldId} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      <button type="button" class="secondary" onClick={() => (reason.trim() ? (setError(undefined), onDecide(reason.trim())) : setError('Give the reason for your decision (it is kept in the identity history).'))}>
        {button}
      </button>
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

/** A decision naming another record or identity, with a reason (link, merge). */
function TwoFieldDecision({ id, legend, field, button, onDecide }: { id: string; legend: string; field: string; button: string; onDecide: (other: string, reason: string) => void }) {
  const [other, setOther] = useState('');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>();
  return (
    <fieldset>
      <legend>{legend}</legend>
      <label for={`${id}-other`}>{field}</label>
      <input id={`${id}-other`} value={other} onInput={(e) => setOther((e.target as HTMLInputElement).value)} />
      <label for={`${id}-reason`}>Reason</label>
      <input id={`${id}-reason`} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      <button type="button" onClick={() => (!other.trim() || !reason.trim() ? setError('Give both the id and the reason (it is kept in the identity history).') : (setError(undefined), onDecide(other.trim().replace(/^Patient\//, ''), reason.trim())))}>
        {button}
      </button>
      {error && <p class="error" role="alert">{error}</p>}
    </fieldset>
  );
}
