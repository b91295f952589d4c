import { useState } from 'preact/hooks';
import type { Api } from '../fhir.js';
import { Empty, ErrorNote, Loading, NotAvailable, Section, useLoad } from '../ui.js';

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

/** How many recent messages the per-participant figures are counted over. */
const WINDOW = 500;

/** The interface analyst's desk: participants and their traffic, the error queue, a message's raw text and replay. */
export function Interfaces({ api }: { api: Api }) {
  const load = useLoad(async () => {
    const [{ participants }, { messages }] = await Promise.all([api.get<{ participants: Participant[] }>('/participants'), api.get<{ messages: Message[] }>(`/messages?_count=${WINDOW}`)]);
    return { participants, messages };
  }, []);
  const [open, setOpen] = useState<Message | undefined>();
  const [note, setNote] = useState<{ error?: string; ok?: string }>({});
  if (load.loading && !load.data) return <main id="main"><Loading what="the interfaces" /></main>;
  if (load.error || !load.data) return <main id="main"><h1>Interfaces</h1>{load.error && <ErrorNote error={load.error} />}</main>;
  const { participants, messages } = load.data;
  const failed = messages.filter((m) => m.status === 'failed');
  const show = async (m: Message) => {
    setNote({});
    try {
      setOpen(await api.get<Message>(`/messages/${encodeURIComponent(m.id)}`));
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
        {participants.length ? (
          <table>
            <caption class="sr-only">Participants and their traffic over the last {WINDOW} messages</caption>
            <thead><tr><th scope="col">Participant</th><th scope="col">Channels</th><th scope="col">Messages</th><th scope="col">Errors</th><th scope="col">Last message</th></tr></thead>
            <tbody>
              {participants.map((p) => {
                const mine = messages.filter((m) => m.participantId === p.id);
                const errors = mine.filter((m) => m.status === 'failed').length;
                const channels = [...new Set(mine.map((m) => `${m.channel} ${m.format}`))];
                return (
                  <tr key={p.id}>
                    <td>{p.name}{!p.active && ' (inactive)'}</td>
                    <td>{channels.join(', ') || [p.hl7Facility && `HL7 v2 ${p.hl7Facility}`, p.clientId && 'FHIR API'].filter(Boolean).join(', ')}</td>
                    <td>{mine.length}</td>
                    <td>{mine.length ? `${errors} (${Math.round((errors / mine.length) * 100)} %)` : '0'}</td>
                    <td>{mine[0]?.receivedAt.slice(0, 19).replace('T', ' ') ?? 'none'}</td>
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
            <h3 id="raw-h">Message {open.controlId ?? open.id}</h3>
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
            {messages.slice(0, 50).map((m) => (
              <tr key={m.id}><td>{m.receivedAt.slice(0, 19).replace('T', ' ')}</td><td>{m.messageType ?? m.format}</td><td>{m.channel}</td><td>{m.status}</td></tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Unmapped local codes" id="local-codes">
        <NotAvailable what="The unmapped local codes worklist" />
      </Section>
    </main>
  );
}
