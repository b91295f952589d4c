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
        ? [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }]
        : undefined,
  }));
  return cached as CapabilityStatementRestResource[];
}

/** The CapabilityStatement: only what this server really does (composite parameters are not listed). */
export function capabilityStatement(baseUrl: string, version: string): CapabilityStatement {
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
        resource: resources(),
      },
    ],
  };
}
