import type { Bundle } from '@medplum/fhirtypes';
import { setClearance } from '../src/consent/clearance.js';
import { privacyConsent } from '../src/consent/privacy-consent.js';
import { processBundle } from '../src/engine/bundle-processor.js';
import { dispatch } from '../src/engine/fhir-router.js';
import { systemRequest } from '../src/ingest/system-request.js';
import { createClient, type NewClient } from '../src/security/clients.js';
import { createTessera } from '../src/server/tessera.js';
import { refreshPlannerStatistics } from '../src/store/statistics.js';
import { directoryBundle, ORGANIZATIONS, patientBundles } from '../src/synthetic/community.js';
import { benchConfig } from './config.js';

/**
 * The governance benches' store (bench/governance.ts over HTTP, bench/governance-engine.ts in process):
 * `resources` resources of the deterministic synthetic community (src/synthetic), one patient in five
 * with a Consent denying an organization; two clients, `off` cleared for every kind of sensitive data
 * (the policy's cheapest path) and `on` uncleared (every read and search carries the consent and
 * label conditions once it declares a purpose of use).
 */
export async function loadGovernanceStore(backend: 'sqlite' | 'postgres', resources: number) {
  const { config, cleanup } = benchConfig(backend);
  const tessera = await createTessera({ ...config, audit: false });
  const clients: Record<'off' | 'on', NewClient> = {
    off: await createClient(tessera.db, { name: 'governance-bench-unrestricted', scope: 'system/*.cruds' }),
    on: await createClient(tessera.db, { name: 'governance-bench-treatment', scope: 'system/*.cruds' }),
  };
  await setClearance(tessera.db, `client:${clients.off.clientId}`, ['*']);
  await processBundle(tessera.repo, systemRequest(directoryBundle(1)), dispatch);
  const patients: string[] = [];
  let loaded = 0;
  for (const bundle of patientBundles({ seed: 11, patients: Number.MAX_SAFE_INTEGER, encountersPerPatient: [2, 8] })) {
    if (loaded >= resources) break;
    const response = (await processBundle(tessera.repo, systemRequest(bundle as Bundle), dispatch)) as Bundle;
    const patient = /Patient\/([^/]+)/.exec(response.entry?.[0].response?.location ?? '')?.[1] as string;
    patients.push(patient);
    loaded += bundle.entry?.length ?? 0;
    if (patients.length % 5 === 0) {
      // One patient in five denies an organization: consent rows the policy's condition has to consult.
      const denied = `Organization/${ORGANIZATIONS[patients.length % ORGANIZATIONS.length].id}`;
      const consent = privacyConsent(patient, { type: 'deny', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: denied } }] });
      await processBundle(tessera.repo, systemRequest({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: consent, request: { method: 'POST', url: 'Consent' } }] }), dispatch);
    }
  }
  await refreshPlannerStatistics(tessera.db);
  await tessera.close();
  return { config, cleanup, clients, patients };
}
