import type { Coding, Extension, Quantity } from '@medplum/fhirtypes';

/**
 * The unit a sender coded in its own system (an HL7 v2 OBX-6 such as `MGPERDL^mg per dL^99LAB`), kept on
 * a Quantity whose `system`/`code` now say UCUM (from our unit table, the sender's UCUM alternate, or the
 * participant's code map): a Quantity holds one coded unit, and the sender's must not be lost.
 */
export const ORIGINAL_UNIT_EXTENSION = 'https://tessera.dev/fhir/StructureDefinition/original-unit';

export function originalUnitExtension(unit: { system: string; code: string }): Extension {
  return { url: ORIGINAL_UNIT_EXTENSION, valueCoding: { system: unit.system, code: unit.code } };
}

/** The sender's own coded unit a Quantity keeps in the extension, if any. */
export function originalUnit(q: Quantity): { system: string; code: string } | undefined {
  const coding: Coding | undefined = q.extension?.find((e) => e.url === ORIGINAL_UNIT_EXTENSION)?.valueCoding;
  return coding?.system && coding.code ? { system: coding.system, code: coding.code } : undefined;
}
