import type { Resource } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';
import { compartmentPatients } from './audit-subjects.js';

/**
 * The patients whose compartment any stored version of each resource was in, as `Patient/{id}`. An
 * event names a resource of a patient's compartment under that patient's search key only
 * (AuditSubjects.unattached), so AuditEvent?entity= looks for it among those patients' events; every
 * version counts, since an event may come from before the resource moved to another patient.
 */
export async function entityOwners(repo: Repository, references: readonly string[]): Promise<string[]> {
  const owners = new Set<string>();
  for (const reference of references) {
    const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(reference);
    if (!m || m[1] === 'Patient') continue; // a Patient is its own key
    // The current version is in `resource`, the superseded ones in `resource_history`.
    const versions = await repo.sql.query<{ content: string | null }>(
      'SELECT content FROM resource WHERE type = ? AND id = ? UNION ALL SELECT content FROM resource_history WHERE type = ? AND id = ?',
      [m[1], m[2], m[1], m[2]],
    );
    for (const { content } of versions) {
      if (content) for (const patient of compartmentPatients(JSON.parse(content) as Resource)) owners.add(`Patient/${patient}`);
    }
  }
  return [...owners];
}
