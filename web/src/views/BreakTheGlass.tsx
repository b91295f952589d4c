/* eslint-disable @typescript-eslint/no-explicit-any */
import { useState } from 'preact/hooks';
import type { Api } from '../fhir.js';

/** Emergency access: a clinician declares break-the-glass with a reason (audited, reviewed by privacy officers). */
export function BreakTheGlass({ api, id, onGranted, compact }: { api: Api; id: string; onGranted: () => void; compact?: boolean }) {
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
