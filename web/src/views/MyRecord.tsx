import type { Api } from '../fhir.js';
import type { Session } from '../session.js';
import { PatientPage } from './PatientPage.js';

export function MyRecord({ api, session }: { api: Api; session: Session }) {
  return session.patient ? <PatientPage api={api} session={session} id={session.patient} /> : <main id="main"><h1>My record</h1><p>Your account is not linked to a patient record.</p></main>;
}
