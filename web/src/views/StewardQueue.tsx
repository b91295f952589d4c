import type { Api } from '../fhir.js';
import { NotAvailable } from '../ui.js';

export function StewardQueue(_props: { api: Api }) {
  return (
    <main id="main">
      <h1>StewardQueue</h1>
      <NotAvailable what="StewardQueue" />
    </main>
  );
}
