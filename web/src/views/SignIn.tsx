import { useState } from 'preact/hooks';
import { beginSignIn } from '../session.js';

/** Purposes of use a user may declare (the server binds them to roles: docs/governance.md §2). */
const PURPOSES = [
  { code: 'TREAT', label: 'Treatment (clinicians)' },
  { code: 'ETREAT', label: 'Emergency treatment (clinicians)' },
  { code: 'HOPERAT', label: 'Operations (data stewards, interface analysts, privacy officers)' },
  { code: 'PATRQT', label: 'My own record (patients)' },
];

export function SignIn({ error }: { error?: string }) {
  const [purpose, setPurpose] = useState('TREAT');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | undefined>(error);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await beginSignIn(purpose);
    } catch (err) {
      setFailure((err as Error).message);
      setBusy(false);
    }
  };
  return (
    <main id="main" class="narrow">
      <h1>Tessera community health record</h1>
      <p>Sign in with your Tessera account. Every access is recorded with the purpose you declare.</p>
      {failure && (
        <p class="error" role="alert">
          {failure}
        </p>
      )}
      <form onSubmit={submit}>
        <label for="purpose">Purpose of use</label>
        <select id="purpose" value={purpose} onChange={(e) => setPurpose((e.target as HTMLSelectElement).value)}>
          {PURPOSES.map((p) => (
            <option key={p.code} value={p.code}>
              {p.label}
            </option>
          ))}
        </select>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
