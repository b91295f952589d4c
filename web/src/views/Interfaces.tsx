import type { Api } from '../fhir.js';
import { NotAvailable } from '../ui.js';

export function Interfaces(_props: { api: Api }) {
  return (
    <main id="main">
      <h1>Interfaces</h1>
      <NotAvailable what="Interfaces" />
    </main>
  );
}
