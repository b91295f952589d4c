import { useState } from 'preact/hooks';
import type { Api } from '../fhir.js';
import { Empty, ErrorNote, Loading, Section, useLoad } from '../ui.js';
import { Subscriptions } from './Subscriptions.js';

interface Participant {
  id: string;
  name: string;
  organizationId: string;
  mrnSystem: string;
  hl7Facility?: string;
  hl7Application?: string;
  clientId?: string;
  active: boolean;
}
interface Message {
  id: string;
  participantId?: string;
  channel: string;
  format: string;
  messageType?: string;
  controlId?: string;
  status: string;
  receivedAt: string;
  attempts: number;
  error?: string;
  raw?: string;
  ackCode?: string;
}

interface Traffic {
  participantId: string | null;
  name: string;
  messages: number;
  failed: number;
  errorRate: number;
  perHour: number;
  channels: string[];
  lastMessage: string | null;
}
interface Unmapped {
  participantId: string;
  system: string;
  code: string;
  display?: string;
  element: string;
  occurrences: number;
  lastSeen: string;
  sampleMessage?: string;
}

/** The window the server counts each participant's traffic over. */
const HOURS = 24;
const time = (iso: string | null | undefined) => (iso ? iso.slice(0, 19).replace('T', ' ') : 'none');

/** The interface analyst's desk: participants and their traffic, the error queue, a message's raw text and replay, unmapped local codes. */
export function Interfaces({ api }: { api: Api }) {
  const load = useLoad(async () => {
    const [{ participants }, traffic, { messages: failed }, { messages }] = await Promise.all([
      api.get<{ participants: Participant[] }>('/participants'),
      api.get<{ participants: Traffic[]; since: string }>(`/participants/traffic?hours=${HOURS}`),
      api.get<{ messages: Message[] }>('/messages?status=failed&_count=200'),
      api.get<{ messages: Message[] }>('/messages?_count=50'),
    ]);
    const worklists = await Promise.all(participants.map((p) => api.get<{ unmapped: Unmapped[] }>(`/participants/${encodeURIComponent(p.id)}/unmapped-codes?_count=50`).then((w) => w.unmapped)));
    return { participants, traffic: traffic.participants, failed, messages, unmapped: worklists.flat().sort((a, b) => b.occurrences - a.occurrences) };
  }, []);
  const [open, setOpen] = useState<Message | undefined>();
  const [note, setNote] = useState<{ error?: string; ok?: string }>({});
  if (load.loading && !load.data) return <main id="main"><Loading what="the interfaces" /></main>;
  if (load.error || !load.data) return <main id="main"><h1>Interfaces</h1>{load.error && <ErrorNote error={load.error} />}</main>;
  const { participants, traffic, failed, messages, unmapped } = load.data;
  const show = async (m: Message) => {
    setNote({});
    try {
      setOpen(await api.get<Message>(`/messages/${encodeURIComponent(m.id)}`));
      requestAnimationFrame(() => document.getElementById('raw-h')?.focus());
    } catch (err) {
      setNote({ error: (err as Error).message });
    }
  };
  const replay = async (m: Message) => {
    try {
      const res = await api.post<Message>(`/messages/${encodeURIComponent(m.id)}/replay`, {});
      setNote(res.status === 'failed' ? { error: `Replayed: failed again (${res.error ?? res.ackCode ?? ''})` } : { ok: `Replayed: ${res.status}${res.ackCode ? ` (acknowledgement ${res.ackCode})` : ''}` });
      setOpen(undefined);
      load.reload();
    } catch (err) {
      setNote({ error: (err as Error).message });
    }
  };
  return (
    <main id="main">
      <h1>Interfaces</h1>
      <Section title="Participants" id="participants" count={participants.length}>
        {traffic.length ? (
          <table class="traffic">
            <caption class="sr-only">Participants and their traffic over the last {HOURS} hours (counted by the server)</caption>
            <thead><tr><th scope="col">Participant</th><th scope="col">Channels</th><th scope="col">Messages ({HOURS} h)</th><th scope="col">Per hour</th><th scope="col">Errors</th><th scope="col">Last message (UTC)</th></tr></thead>
            <tbody>
              {traffic.map((t) => {
                const p = participants.find((x) => x.id === t.participantId);
                return (
                  <tr key={t.participantId ?? 'unknown'}>
                    <td>{t.name}{p && !p.active && ' (inactive)'}</td>
                    <td>{t.channels.join(', ') || (p ? [p.hl7Facility && `HL7 v2 ${p.hl7Facility}`, p.clientId && 'FHIR API'].filter(Boolean).join(', ') : '')}</td>
                    <td>{t.messages}</td>
                    <td>{t.perHour}</td>
                    <td class={t.failed ? 'disagree' : undefined}>{t.failed} ({Math.round(t.errorRate * 1000) / 10} %)</td>
                    <td>{time(t.lastMessage)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : <Empty what="participants" />}
      </Section>
      <Section title="Error queue" id="errors" count={failed.length}>
        {note.error && <p class="error" role="alert">{note.error}</p>}
        {note.ok && <p class="ok" role="status">{note.ok}</p>}
        {failed.length ? (
          <table>
            <caption class="sr-only">Messages that failed, newest first</caption>
            <thead><tr><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Sender</th><th scope="col">Error</th><th scope="col">Message</th></tr></thead>
            <tbody>
              {failed.map((m) => (
                <tr key={m.id}>
                  <td>{m.receivedAt.slice(0, 19).replace('T', ' ')}</td>
                  <td>{m.messageType ?? m.format}</td>
                  <td>{participants.find((p) => p.id === m.participantId)?.name ?? 'unknown sender'}</td>
                  <td>{m.error ?? ''}</td>
                  <td><button type="button" class="secondary" onClick={() => show(m)} aria-label={`Open message ${m.controlId ?? m.id}`}>Open</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : <Empty what="failed messages" />}
        {open && (
          <div class="card" aria-labelledby="raw-h">
            <h3 id="raw-h" tabIndex={-1}>Message {open.controlId ?? open.id}</h3>
            <p>Status {open.status}, {open.attempts} attempt(s). {open.error}</p>
            <pre class="raw" tabIndex={0} aria-label="Raw message">{open.raw}</pre>
            <button type="button" onClick={() => replay(open)}>Replay</button>{' '}
            <button type="button" class="secondary" onClick={() => setOpen(undefined)}>Close</button>
          </div>
        )}
      </Section>
      <Section title="Recent messages" id="recent" count={messages.length}>
        <table>
          <caption class="sr-only">The latest messages</caption>
          <thead><tr><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Channel</th><th scope="col">Status</th></tr></thead>
          <tbody>
            {messages.map((m) => (
              <tr key={m.id}><td>{m.receivedAt.slice(0, 19).replace('T', ' ')}</td><td>{m.messageType ?? m.format}</td><td>{m.channel}</td><td>{m.status}</td></tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Unmapped local codes" id="local-codes" count={unmapped.length}>
        <p class="note">Local codes participants send that no map translates yet, most frequent first; a map (tessera codes) makes them comparable across sources.</p>
        {unmapped.length ? (
          <table class="unmapped">
            <caption class="sr-only">Unmapped local codes by participant</caption>
            <thead><tr><th scope="col">Participant</th><th scope="col">Code</th><th scope="col">Text</th><th scope="col">Element</th><th scope="col">Seen</th><th scope="col">Last seen (UTC)</th><th scope="col">Example</th></tr></thead>
            <tbody>
              {unmapped.map((u) => (
                <tr key={`${u.participantId}|${u.system}|${u.code}`}>
                  <td>{participants.find((p) => p.id === u.participantId)?.name ?? u.participantId}</td>
                  <td>{u.code} <span class="note">({u.system})</span></td>
                  <td>{u.display ?? ''}</td>
                  <td>{u.element}</td>
                  <td>{u.occurrences}</td>
                  <td>{time(u.lastSeen)}</td>
                  <td>{u.sampleMessage ? <button type="button" class="secondary" onClick={() => show({ id: u.sampleMessage } as Message)} aria-label={`Open a message with code ${u.code}`}>Open</button> : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : <Empty what="unmapped local codes" />}
      </Section>
      <Subscriptions api={api} />
    </main>
  );
}
