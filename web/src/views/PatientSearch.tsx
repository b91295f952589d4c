import { useState } from 'preact/hooks';
import type { Api, Resource } from '../fhir.js';
import { resources } from '../fhir.js';
import { address, age, humanName, isGolden } from '../format.js';
import { go } from '../router.js';

const GOLDEN = 'https://tessera.dev/fhir/CodeSystem/mpi|golden';
const ENTERPRISE = 'urn:tessera:enterprise-id';

/** The medical record numbers a person holds across participants (the golden record carries every source's). */
function mrns(p: Resource): { system: string; value: string; assigner?: string }[] {
  return (p.identifier ?? [])
    .filter((i: any) => i.system !== ENTERPRISE && i.type?.coding?.some((c: any) => c.code === 'MR'))
    .map((i: any) => ({ system: i.system ?? '', value: i.value ?? '', assigner: i.assigner?.display }));
}

/**
 * Finds people across the community: enterprise (golden) records of the master patient index first, so
 * one row is one person whatever the number of sources, and any participant's MRN finds them; source
 * records when the index is off. Criteria go in a POST body, never in a URL.
 */
export function PatientSearch({ api }: { api: Api }) {
  const [form, setForm] = useState({ name: '', birthdate: '', mrn: '' });
  const [results, setResults] = useState<Resource[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const criteria: Record<string, string> = {};
    if (form.name.trim()) criteria.name = form.name.trim();
    if (form.birthdate) criteria.birthdate = form.birthdate;
    if (form.mrn.trim()) criteria.identifier = form.mrn.trim();
    if (!Object.keys(criteria).length) {
      setError('Enter a name, a birth date or a medical record number.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      let found = resources(await api.search('Patient', { ...criteria, _tag: GOLDEN, active: 'true', _count: '50' }));
      if (!found.length) found = resources(await api.search('Patient', { ...criteria, _count: '50' }));
      setResults(found);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const field = (key: keyof typeof form) => ({
    value: form[key],
    onInput: (e: Event) => setForm({ ...form, [key]: (e.target as HTMLInputElement).value }),
  });
  return (
    <main id="main">
      <h1>Find a patient</h1>
      <form class="search" onSubmit={submit} aria-describedby="search-help">
        <p id="search-help">Search the whole community by name, birth date or any participant's medical record number.</p>
        <div class="fields">
          <div>
            <label for="q-name">Name</label>
            <input id="q-name" name="name" autocomplete="off" {...field('name')} />
          </div>
          <div>
            <label for="q-birthdate">Birth date</label>
            <input id="q-birthdate" name="birthdate" type="date" {...field('birthdate')} />
          </div>
          <div>
            <label for="q-mrn">Medical record number</label>
            <input id="q-mrn" name="mrn" autocomplete="off" {...field('mrn')} />
          </div>
        </div>
        <button type="submit" disabled={busy}>
          Search
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div role="status" aria-live="polite" class="sr-status">
        {results && `${results.length} ${results.length === 1 ? 'person' : 'people'} found`}
      </div>
      {results && results.length > 0 && (
        <table class="results">
          <caption>Patients found</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Sex</th>
              <th scope="col">Birth date (age)</th>
              <th scope="col">Address</th>
              <th scope="col">Sources (MRN)</th>
            </tr>
          </thead>
          <tbody>
            {results.map((p) => (
              <tr key={p.id}>
                <td>
                  <a href={`#/patient/${p.id}`} onClick={(e) => (e.preventDefault(), go('patient', p.id as string))}>
                    {humanName(p.name)}
                  </a>
                </td>
                <td>{p.gender ?? ''}</td>
                <td>
                  {p.birthDate ?? ''} {p.birthDate && `(${age(p.birthDate)})`}
                </td>
                <td>{address(p.address)}</td>
                <td>
                  <ul class="plain">
                    {mrns(p).map((m) => (
                      <li key={m.system + m.value}>
                        <span class="badge">{m.assigner ?? m.system}</span> {m.value}
                      </li>
                    ))}
                    {!isGolden(p) && !mrns(p).length && <li>{p.managingOrganization?.display ?? ''}</li>}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
