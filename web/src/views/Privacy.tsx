import type { Api } from '../fhir.js';
import { NotAvailable } from '../ui.js';

export function Privacy(_props: { api: Api }) {
  return (
    <main id="main">
      <h1>Privacy</h1>
      <NotAvailable what="Privacy" />
    </main>
  );
}
