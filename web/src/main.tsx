import { render } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { Api } from './fhir.js';
import { go, useRoute } from './router.js';
import { completeSignIn, resumeSession, session, signOut, type Session } from './session.js';
import { SignIn } from './views/SignIn.js';
import { PatientSearch } from './views/PatientSearch.js';
import { PatientPage } from './views/PatientPage.js';
import { StewardQueue } from './views/StewardQueue.js';
import { Interfaces } from './views/Interfaces.js';
import { StewardIdentity } from './views/StewardIdentity.js';
import { Privacy } from './views/Privacy.js';
import { MyRecord } from './views/MyRecord.js';

/** The pages each role has (the server's policy decides what they may actually read). */
const NAV: Record<string, { path: string; label: string }[]> = {
  clinician: [{ path: 'search', label: 'Find a patient' }],
  steward: [{ path: 'steward', label: 'Review queue' }, { path: 'identity', label: 'Identities' }, { path: 'search', label: 'Find a patient' }],
  'interface-analyst': [{ path: 'interfaces', label: 'Interfaces' }],
  'privacy-officer': [{ path: 'privacy', label: 'Privacy' }, { path: 'search', label: 'Find a patient' }],
  admin: [{ path: 'search', label: 'Find a patient' }, { path: 'steward', label: 'Review queue' }, { path: 'identity', label: 'Identities' }, { path: 'interfaces', label: 'Interfaces' }],
  patient: [{ path: 'me', label: 'My record' }],
};

function App({ initial, error }: { initial?: Session; error?: string }) {
  const [user, setUser] = useState(initial);
  const route = useRoute();
  const api = useMemo(() => (user ? new Api(user) : undefined), [user]);
  if (!user || !api || !session()) return <SignIn error={error ?? (user ? 'Your session ended; please sign in again.' : undefined)} />;
  const nav = NAV[user.role] ?? [];
  const [page, arg] = route.length ? route : [nav[0]?.path ?? 'search'];
  let view;
  if (page === 'patient' && arg) view = <PatientPage api={api} session={user} id={arg} />;
  else if (page === 'steward') view = <StewardQueue api={api} />;
  else if (page === 'identity') view = <StewardIdentity key={arg ?? ''} api={api} id={arg} />;
  else if (page === 'interfaces') view = <Interfaces api={api} />;
  else if (page === 'privacy') view = <Privacy api={api} />;
  else if (page === 'me') view = <MyRecord api={api} session={user} />;
  else view = <PatientSearch api={api} />;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>Skip to content</a>
      <header>
        <span class="brand">Tessera</span>
        <nav aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li key={n.path}>
                <a href={`#/${n.path}`} aria-current={page === n.path ? 'page' : undefined} onClick={(e) => (e.preventDefault(), go(n.path))}>{n.label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          {user.role}
          {user.purpose ? ` · purpose ${user.purpose}` : ''}
        </span>
        <button type="button" class="secondary" onClick={() => void signOut().then(() => (setUser(undefined), history.replaceState(null, '', '/')))}>Sign out</button>
      </header>
      {view}
    </>
  );
}

async function start() {
  const root = document.getElementById('app') as HTMLElement;
  root.textContent = '';
  try {
    // Back from the sign-in page, or a reload: the session cookie gives a new access token.
    const signedIn = (await completeSignIn()) ?? (await resumeSession());
    render(<App initial={signedIn} />, root);
  } catch (err) {
    render(<App error={(err as Error).message} />, root);
  }
}

void start();
