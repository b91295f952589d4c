/* eslint-disable @typescript-eslint/no-explicit-any */
import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import type { Api, Resource } from '../fhir.js';
import { ApiError } from '../fhir.js';
import { address, age, concept, date, humanName } from '../format.js';
import { arrivedIn, sourcesOf } from '../merged.js';
import type { Session } from '../session.js';
import { ErrorNote, Loading, Section, useLoad } from '../ui.js';
import { BreakTheGlass } from './BreakTheGlass.js';
import { DuplicateCheck } from './DuplicateCheck.js';
import { CareTeam, Encounters, FactList, Results } from './RecordSections.js';
import { Documents } from './Documents.js';
import { Timeline } from './Timeline.js';

/** Purposes a clinician may declare for one patient (the server checks the role: docs/governance.md §2). */
const PATIENT_PURPOSES = [
  { code: 'TREAT', label: 'Treatment' },
  { code: 'ETREAT', label: 'Emergency treatment' },
];
/** The purpose declared per patient during this visit (memory only, like the tokens). */
const declared = new Map<string, string>();

interface PatientRecord {
  facts: Resource[];
  byType: { [type: string]: Resource[] };
  person?: Resource;
  provenance: Map<string, Resource>;
  referenced: Map<string, Resource>;
  sourcePatients: Resource[];
}

const WHEN_FIELDS = ['effectiveDateTime', 'issued', 'authoredOn', 'recordedDate', 'onsetDateTime', 'occurrenceDateTime', 'date'];
const newest = (r: Resource): string => r.period?.start ?? r.effectivePeriod?.start ?? WHEN_FIELDS.map((f) => r[f]).find(Boolean) ?? '';

/**
 * The person's merged record (`$merged-record`: each fact once, with its sources and conflicts), and the
 * person's source Patient records (one per participant, for the sources list and badges' organizations).
 */
async function loadRecord(api: Api, id: string): Promise<PatientRecord> {
  // The source Patients are read beside the merge (not after it): the page waits for the slower one only.
  const sources = api
    .get<Resource>(`Patient/${encodeURIComponent(id)}`)
    .then(async (p) => {
      const ids: string[] = (p.link ?? []).map((l: any) => /^Patient\/(.+)$/.exec(l.other?.reference ?? '')?.[1]).filter(Boolean);
      // One search for all of them (those the user may not read are left out by the policy).
      return ids.length ? await api.all(`Patient?_id=${ids.map(encodeURIComponent).join(',')}&_count=${ids.length}`) : [p];
    })
    .catch(() => [] as Resource[]);
  const all = await api.all(`Patient/${encodeURIComponent(id)}/$merged-record?_count=5000`);
  const person = all.find((r) => r.resourceType === 'Patient' && r.id === id) ?? all.find((r) => r.resourceType === 'Patient');
  const provenance = new Map<string, Resource>();
  const referenced = new Map<string, Resource>();
  const byType: PatientRecord['byType'] = {};
  const facts: Resource[] = [];
  for (const r of all) {
    if (r.resourceType === 'Provenance') provenance.set(r.target?.[0]?.reference ?? '', r);
    else if (r.resourceType === 'Patient') continue;
    else if (r.meta?.tag?.some((t) => t.code === 'merged')) {
      facts.push(r);
      (byType[r.resourceType] ??= []).push(r);
    } else referenced.set(`${r.resourceType}/${r.id}`, r);
  }
  for (const list of Object.values(byType)) list.sort((a, b) => newest(b).localeCompare(newest(a)));
  // The source records the enterprise record links (a source record's page: itself).
  const sourcePatients = await sources;
  return { facts, byType, person, provenance, referenced, sourcePatients };
}

const organizationOf = (p: Resource): string => p.managingOrganization?.display ?? p.identifier?.find((i: any) => i.assigner?.display)?.assigner?.display ?? 'unknown organization';
const mrnOf = (p: Resource): string => p.identifier?.find((i: any) => i.type?.coding?.some((c: any) => c.code === 'MR'))?.value ?? '';

export function PatientPage({ api, session, id, children }: { api: Api; session: Session; id: string; children?: ComponentChildren }) {
  const [purpose, setPurpose] = useState<string | undefined>(declared.get(id));
  const scoped = api.withPurpose(purpose);
  const [tick, setTick] = useState(0);
  // Loaded again when the patient, the declared purpose or a break-the-glass grant changes.
  const load = useLoad(() => loadRecord(scoped, id), [id, purpose, tick]);
  const [original, setOriginal] = useState<{ ref: string; resource?: Resource; error?: string } | undefined>();
  const dialog = useRef<HTMLDialogElement>(null);
  const showOriginal = async (ref: string) => {
    setOriginal({ ref });
    dialog.current?.showModal();
    try {
      setOriginal({ ref, resource: await scoped.get<Resource>(ref) });
    } catch (err) {
      setOriginal({ ref, error: (err as Error).message });
    }
  };
  const choosePurpose = (p: string) => {
    declared.set(id, p);
    setPurpose(p);
  };
  const purposeControl =
    session.role === 'clinician' ? (
      <p class="purpose">
        <label for="patient-purpose">Purpose of use for this patient</label>
        <select id="patient-purpose" value={purpose ?? session.purpose} onChange={(e) => choosePurpose((e.target as HTMLSelectElement).value)}>
          {PATIENT_PURPOSES.map((p) => (
            <option key={p.code} value={p.code}>{p.label} ({p.code})</option>
          ))}
        </select>
      </p>
    ) : null;
  if (load.loading && !load.data) return <main id="main">{purposeControl}<Loading what="the patient's record" /></main>;
  if (load.error || !load.data) {
    const denied = load.error instanceof ApiError && (load.error.status === 404 || load.error.status === 403);
    return (
      <main id="main">
        <h1>Patient record</h1>
        {purposeControl}
        {denied ? <p class="error" role="alert">This record is not available to you: it does not exist, or the patient's consent or its sensitivity withholds it.</p> : load.error && <ErrorNote error={load.error} />}
        {denied && session.role === 'clinician' && <BreakTheGlass api={scoped} id={id} onGranted={() => setTick((t) => t + 1)} />}
      </main>
    );
  }
  const record = load.data;
  const { byType, person, sourcePatients } = record;
  const orgByPatient = new Map(sourcePatients.map((p) => [p.id as string, organizationOf(p)]));
  const badge = (r: Resource) => (
    <span class="sources">
      {sourcesOf(r, record.provenance.get(`${r.resourceType}/${r.id}`), (pid) => orgByPatient.get(pid)).map((s) => (
        <span class="source" key={s.reference}>
          <span class="badge">{s.label}</span>{' '}
          <button type="button" class="link" onClick={() => showOriginal(s.reference)} aria-label={`Original ${r.resourceType} from ${s.label}`}>
            original
          </button>
        </span>
      ))}
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
      {purposeControl}
      {session.role === 'clinician' && <BreakTheGlass api={scoped} id={id} onGranted={() => setTick((t) => t + 1)} compact />}
      <Section title="Sources of this record" id="sources" count={sourcePatients.length}>
        <ul class="plain">
          {sourcePatients.map((p) => (
            <li key={p.id}>
              <span class="badge">{organizationOf(p)}</span> {mrnOf(p)} · updated {date(p.meta?.lastUpdated)}
            </li>
          ))}
        </ul>
        <p class="note">Each fact below appears once, with every source that recorded it; where sources disagree it is highlighted.</p>
      </Section>
      {session.role === 'clinician' && <DuplicateCheck api={scoped} session={session} id={id} />}
      <Results all={byType.Observation ?? []} badge={badge} />
      <FactList title="Medications" column="Medication" id="medications" items={[...(byType.MedicationRequest ?? []), ...(byType.MedicationStatement ?? [])]} label={(r) => concept(r.medicationCodeableConcept) || r.medicationReference?.display || ''} detail={(r) => r.status ?? ''} badge={badge} />
      <FactList title="Problems" column="Problem" id="problems" items={byType.Condition} label={(r) => concept(r.code)} detail={(r) => concept(r.clinicalStatus)} badge={badge} />
      <FactList title="Allergies" column="Allergy" id="allergies" items={byType.AllergyIntolerance} label={(r) => concept(r.code)} detail={(r) => [concept(r.clinicalStatus), r.criticality ? `criticality ${r.criticality}` : ''].filter(Boolean).join(', ')} badge={badge} />
      <FactList title="Immunizations" column="Vaccine" id="immunizations" items={byType.Immunization} label={(r) => concept(r.vaccineCode)} detail={(r) => r.status ?? ''} badge={badge} />
      <Encounters items={byType.Encounter ?? []} badge={badge} />
      <Timeline api={scoped} id={id} badge={badge} />
      <CareTeam facts={record.facts} referenced={record.referenced} />
      <Documents api={scoped} items={byType.DocumentReference ?? []} badge={badge} />
      {children}
      <dialog ref={dialog} aria-labelledby="original-h" onClose={() => setOriginal(undefined)}>
        <h2 id="original-h">Original {original?.ref.split('/')[0]}</h2>
        {original?.error && <p class="error" role="alert">{original.error}</p>}
        {original?.resource && (
          <p>
            As stored, version {original.resource.meta?.versionId ?? '?'}, last updated {date(original.resource.meta?.lastUpdated)}; {arrivedIn(original.resource) ? `arrived in ${arrivedIn(original.resource)}` : 'written through the FHIR API'}.
          </p>
        )}
        <pre tabIndex={0}>{original?.resource ? JSON.stringify(original.resource, null, 2) : original?.error ? '' : 'Loading…'}</pre>
        <button type="button" onClick={() => dialog.current?.close()}>Close</button>
      </dialog>
    </main>
  );
}

