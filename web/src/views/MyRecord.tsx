import { useState } from 'preact/hooks';
import type { Api } from '../fhir.js';
import type { Session } from '../session.js';
import { Section } from '../ui.js';
import { PatientPage } from './PatientPage.js';
import { ConsentChoices, ConsentList, Disclosures } from './PatientPrivacy.js';

/** A patient's own pages: their record, their consents (and changing them), and who accessed their record. */
export function MyRecord({ api, session }: { api: Api; session: Session }) {
  const [version, setVersion] = useState(0);
  if (!session.patient) return <main id="main"><h1>My record</h1><p>Your account is not linked to a patient record.</p></main>;
  return (
    <PatientPage api={api} session={session} id={session.patient}>
        <Section title="My privacy choices" id="my-consents">
          <ConsentList key={version} api={api} patient={session.patient} onChange={() => setVersion((v) => v + 1)} />
          <ConsentChoices api={api} patient={session.patient} onDone={() => setVersion((v) => v + 1)} />
        </Section>
        <Section title="Who accessed my record" id="my-disclosures">
          <Disclosures key={version} api={api} patient={session.patient} />
        </Section>
    </PatientPage>
  );
}
