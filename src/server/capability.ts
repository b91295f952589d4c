import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { allResourceTypes } from '../fhir/resource-types.js';
import { getCompiledParams } from '../search/parameters.js';

let cached: CapabilityStatementRestResource[] | undefined;

function resources(): CapabilityStatementRestResource[] {
  cached ??= allResourceTypes().map((type) => ({
    type: type as CapabilityStatementRestResource['type'],
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalUpdate: true,
    conditionalDelete: 'single',
    conditionalRead: 'not-supported',
    referencePolicy: ['literal', 'local'],
    interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'].map((code) => ({
      code: code as 'read',
    })),
    searchInclude: [...getCompiledParams(type).values()].filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`),
    searchParam: [...getCompiledParams(type).values()]
      .filter((p) => p.type !== 'special')
      .map((p) => ({ name: p.code, definition: p.definition.url, type: p.type as 'string' })),
    operation:
      type === 'Patient'
        ? [
            { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' },
            // The longitudinal record (docs/record.md): $summary is the IPS operation; the others are Tessera's.
            { name: 'summary', definition: 'http://hl7.org/fhir/uv/ips/OperationDefinition/summary' },
            { name: 'merged-record', definition: 'https://tessera.dev/fhir/OperationDefinition/merged-record' },
            { name: 'timeline', definition: 'https://tessera.dev/fhir/OperationDefinition/timeline' },
          ]
        : undefined,
  }));
  return cached as CapabilityStatementRestResource[];
}

/** Operations of the master patient index (on when TESSERA_MPI is not 0); mpi-* are Tessera's own. */
const MPI_OPERATIONS = [
  { name: 'match', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-match' },
  { name: 'ihe-pix', definition: 'https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix' },
  ...['mpi-review-queue', 'mpi-review', 'mpi-link', 'mpi-unlink', 'mpi-merge', 'mpi-unmerge', 'mpi-events'].map((name) => ({
    name,
    definition: `https://tessera.dev/fhir/OperationDefinition/${name}`,
  })),
];

/** The CapabilityStatement: only what this server really does (composite parameters are not listed). */
export function capabilityStatement(baseUrl: string, version: string, options: { mpi: boolean }): CapabilityStatement {
  const resource = options.mpi
    ? resources().map((r) => (r.type === 'Patient' ? { ...r, operation: [...(r.operation ?? []), ...MPI_OPERATIONS] } : r))
    : resources();
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    publisher: 'Tessera',
    software: { name: 'Tessera', version },
    implementation: { description: 'Tessera Health Information Exchange', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        security: {
          cors: false,
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: `${baseUrl.replace(/\/fhir$/, '')}/oauth/token` }],
            },
          ],
        },
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
        // System operations: C-CDA documents from participants (docs/interfaces.md).
        operation: [{ name: 'import-ccda', definition: 'https://tessera.dev/fhir/OperationDefinition/import-ccda' }],
        resource,
      },
    ],
  };
}
