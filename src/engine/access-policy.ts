import type { Filter } from '@medplum/core';
import { forbidden } from '../fhir/outcome.js';
import { isPatientCompartmentType } from '../search/compartment.js';
import { filtersCondition, NO_ROWS, type Sql } from '../search/filter-sql.js';
import type { Interaction, Scope } from '../security/scopes.js';
import type { AuthContext } from '../security/token-service.js';
import { ownIndexRows } from '../store/index-writer.js';
import type { Repository } from '../store/repository.js';
import { doesPrivacyWork } from '../users/user-directory.js';

/**
 * The one access decision (issue: "one policy, one place"). Every path that returns or reveals data asks
 * it, in one of two forms that come from the same rules:
 * - type level: may the caller do this interaction on this type at all? (403 when not)
 * - row level: which rows of the type may it reach? A SQL condition over a resource-table alias, which
 *   searches put in their WHERE clause (so what cannot be read cannot be matched, counted, included or
 *   reached through a chain or _has), and which single reads check against the stored row.
 *
 * Inputs: the token's scopes (SMART v2 with granular restrictions), the patient context of `patient/`
 * scopes, and row restrictions that apply to every type (patients' consents, security labels: see
 * `RowRestriction`). A request without a token is the server's own work (intake, CLI): unrestricted.
 */
export class AccessPolicy {
  /** Intake, replay and the CLI act for the exchange itself. */
  static readonly SYSTEM = new AccessPolicy('all', []);

  constructor(
    /** The ways in that the scopes give; 'all' for the system. */
    private readonly grants: readonly Grant[] | 'all',
    /** Conditions every reachable row must also meet (consent, labels). */
    private readonly restrictions: readonly RowRestriction[],
    /** Who is asking, for messages and the audit record. */
    readonly auth?: AuthContext,
    /** The person's Patient records a patient context names (the context and its MPI links). */
    readonly patientRecords: readonly string[] = [],
  ) {}

  /** Whether the caller may do `interaction` on some resources of `type` (`*`: of every type). */
  allows(type: string, interaction: Interaction): boolean {
    return this.grants === 'all' || this.grantsFor(type, interaction).length > 0;
  }

  /** Throws 403 unless the caller may do `interaction` on some resources of `type`. */
  require(type: string, interaction: Interaction): void {
    if (!this.allows(type, interaction)) {
      throw forbidden(`The access token's scopes do not allow ${INTERACTION_NAMES[interaction]} on ${type === '*' ? 'every resource type' : type}`);
    }
  }

  /**
   * Throws 403 unless the scopes reach every row of `type` (`*`: of every type), with no patient context
   * or granular restriction: for the exchange's own operations that cannot be cut down row by row, such
   * as the steward's worklists. Consent does not narrow these (they are operations of the exchange, not
   * disclosures of a patient's record). With `labels`, the caller must also be cleared for every kind of
   * sensitive data, for what carries anything about anyone (the message log's raw messages). With
   * `privacy`, no patient's consent and no security label may narrow what the caller reads of `type`
   * either (`*`: of patients' records): for type and system history, which return every version of many
   * resources and cannot be filtered row by row.
   */
  requireUnrestricted(type: string, interaction: Interaction, what: string, options: { labels?: boolean; privacy?: boolean } = {}): void {
    this.require(type, interaction);
    if (this.grants === 'all') {
      return;
    }
    const unrestricted = this.grantsFor(type, interaction).some((g) => !g.rows && (type !== '*' || g.type === '*'));
    if (!unrestricted) {
      throw forbidden(`${what} needs access to every ${type === '*' ? 'resource' : type}; this token's scopes are limited (patient context or granular scopes)`);
    }
    if (options.labels && this.restrictions.some((r) => r.labels?.(type, 'r'))) {
      throw forbidden(`${what} needs clearance for every kind of sensitive data`);
    }
    // A privacy restriction narrows every patient-compartment type alike: Patient stands for them all.
    const probe = type === '*' ? 'Patient' : type;
    if (options.privacy && this.restrictions.some((r) => r.rows(probe, 'r') || r.labels?.(probe, 'r'))) {
      throw forbidden(`${what} cannot be filtered by patients' consents and security labels, which narrow what this caller may read; search instead (e.g. with _lastUpdated)`);
    }
  }

  /**
   * Throws 403 unless a signed-in user has one of `roles` (users act within their role; backend clients
   * have no role, and their scopes alone decide). For the work of stewards, interface analysts and
   * administrators.
   */
  requireRole(roles: readonly string[], what: string): void {
    const user = this.auth?.user;
    if (user && !roles.includes(user.role)) {
      throw forbidden(`${what} is for ${roles.join(' or ')} users, not ${user.role}`);
    }
  }

  /**
   * Throws 403 unless the caller does a privacy officer's work: a user with that role (whose scopes
   * allow the interaction), or a backend client whose scopes reach every row of `type` and that is
   * cleared for every kind of sensitive data. For the audit log and the break-the-glass review: what
   * they show names every patient and what was seen of them.
   */
  requirePrivacyOfficer(type: string, interaction: Interaction, what: string): void {
    this.require(type, interaction);
    const user = this.auth?.user;
    if (!user) {
      this.requireUnrestricted(type, interaction, what, { labels: true });
    } else if (!doesPrivacyWork(user.role)) {
      throw forbidden(`${what} is for privacy officers`);
    }
  }

  /**
   * Patient records the caller reaches only under a running break-the-glass grant (consent and labels
   * lifted for them): an access that touches them is flagged in its AuditEvent.
   */
  get brokenGlass(): readonly string[] {
    return this.restrictions.flatMap((r) => r.brokenGlass ?? []);
  }

  /** Whether the caller's patient context is this patient's person (a patient app asking about its own record). */
  isOwnRecord(patientId: string): boolean {
    return this.patientRecords.includes(patientId);
  }

  /**
   * The rows of `type` that `interaction` may reach, as SQL over the resource-table alias `alias` (with
   * columns type, id, rk): undefined for every row, NO_ROWS for none.
   */
  rows(type: string, interaction: Interaction, alias: string): Sql | undefined {
    return this.combine(type, interaction, alias, true, true);
  }

  /**
   * What decides whether the caller reaches a row of `type`, as the search parameters whose values the
   * row condition reads (besides the patient compartment, which it always may): undefined when the
   * caller reaches every row. A past version of a resource is judged by these facts (version-reach.ts):
   * the index holds the current version's values only.
   */
  rowFacts(type: string, interaction: Interaction): ReadonlySet<string> | undefined {
    if (!this.rows(type, interaction, 'r')) return undefined;
    const params = new Set<string>(['_security']); // consent rules and labels read the security labels
    if (this.grants !== 'all') for (const grant of this.grantsFor(type, interaction)) grant.params?.forEach((p) => params.add(p));
    return params;
  }

  /**
   * The rows of `type` that the caller could reach but for their security labels, as SQL over `alias`;
   * undefined when labels withhold nothing from this caller. A searchset that withheld some says so
   * (an OperationOutcome issue `suppressed`), without saying what or how many.
   */
  withheldForLabels(type: string, interaction: Interaction, alias: string): Sql | undefined {
    const labelling = this.restrictions.filter((r) => r.labels?.(type, alias));
    if (!labelling.length) {
      return undefined;
    }
    const reachable = this.combine(type, interaction, alias, false, true);
    if (reachable === NO_ROWS) {
      return undefined;
    }
    const labels = labelling.map((r) => r.labels?.(type, alias) as Sql);
    // Only rows carrying a label some restriction withholds by can be withheld for their labels: said
    // first, so that the index of labelled rows is used and the other conditions read those rows only.
    const carrying = labelling.map((r) => r.carriesWithheldLabel?.(alias) ?? { sql: '1 = 1', params: [] });
    const parts: Sql[] = [
      { sql: carrying.length === 1 ? carrying[0].sql : `(${carrying.map((c) => `(${c.sql})`).join(' OR ')})`, params: carrying.flatMap((c) => c.params) },
      ...(reachable ? [{ sql: `(${reachable.sql})`, params: reachable.params }] : []),
      { sql: `NOT (${labels.map((l) => `(${l.sql})`).join(' AND ')})`, params: labels.flatMap((l) => l.params) },
    ];
    return { sql: parts.map((p) => p.sql).join(' AND '), params: parts.flatMap((p) => p.params) };
  }

  /** Conditions combined for this request (a search asks for the same ones for its page, count and checks). */
  private readonly combined = new Map<string, Sql | undefined>();

  private combine(type: string, interaction: Interaction, alias: string, withLabels: boolean, withRestrictions: boolean): Sql | undefined {
    const key = `${type}|${interaction}|${alias}|${withLabels}|${withRestrictions}`;
    if (!this.combined.has(key)) this.combined.set(key, this.combineParts(type, interaction, alias, withLabels, withRestrictions));
    return this.combined.get(key);
  }

  private combineParts(type: string, interaction: Interaction, alias: string, withLabels: boolean, withRestrictions: boolean): Sql | undefined {
    const parts: Sql[] = [];
    if (this.grants !== 'all') {
      const grants = this.grantsFor(type, interaction);
      if (!grants.length) {
        return NO_ROWS;
      }
      if (!grants.some((g) => !g.rows)) {
        const ways = grants.map((g) => (g.rows as GrantRows)(type, alias));
        parts.push(ways.length === 1 ? ways[0] : { sql: `(${ways.map((w) => w.sql).join(' OR ')})`, params: ways.flatMap((w) => w.params) });
      }
    }
    for (const restriction of withRestrictions ? this.restrictions : []) {
      const condition = restriction.rows(type, alias);
      if (condition) {
        parts.push(condition);
      }
      const labels = withLabels ? restriction.labels?.(type, alias) : undefined;
      if (labels) {
        parts.push(labels);
      }
    }
    if (!parts.length) {
      return undefined;
    }
    return { sql: parts.map((p) => `(${p.sql})`).join(' AND '), params: parts.flatMap((p) => p.params) };
  }

  /**
   * The rows of `type` a write may leave behind, as SQL over `alias`: the scopes' reach only (a
   * `patient/` token writes into its patient's compartment, a granular one within its restriction).
   * Consent and labels do not apply: a write discloses nothing, and a source must be able to send its
   * sensitive data. Undefined for any row.
   */
  writableRows(type: string, interaction: Interaction, alias: string): Sql | undefined {
    return this.combine(type, interaction, alias, false, false);
  }

  /**
   * The `type/id` keys, among those given, that `interaction` may reach (current, not deleted rows):
   * one query per type whose rows are restricted.
   */
  async reachable(repo: Repository, refs: readonly { type: string; id: string }[], interaction: Interaction): Promise<Set<string>> {
    const out = new Set<string>();
    const byType = new Map<string, string[]>();
    for (const { type, id } of refs) {
      (byType.get(type) ?? byType.set(type, []).get(type))?.push(id);
    }
    for (const [type, ids] of byType) {
      const condition = this.rows(type, interaction, 'r');
      if (condition === NO_ROWS) {
        continue;
      }
      if (!condition) {
        ids.forEach((id) => out.add(`${type}/${id}`));
        continue;
      }
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const rows = await repo.sql.query<{ id: string }>(
          `SELECT r.id FROM resource r WHERE r.type = ? AND r.deleted = 0 AND r.id IN (${chunk.map(() => '?').join(',')}) AND ${condition.sql}`,
          [type, ...chunk, ...condition.params],
        );
        rows.forEach((r) => out.add(`${type}/${r.id}`));
      }
    }
    return out;
  }

  private grantsFor(type: string, interaction: Interaction): Grant[] {
    return (this.grants as Grant[]).filter((g) => (g.type === '*' || g.type === type) && g.interactions.has(interaction));
  }
}

/** SQL for the rows of `type` a grant reaches, over a resource-table alias. */
type GrantRows = (type: string, alias: string) => Sql;

/** One way into a type's rows, from one scope. */
export interface Grant {
  type: string;
  interactions: ReadonlySet<Interaction>;
  /** The rows it reaches; absent: every row of the type. */
  rows?: GrantRows;
  /** The search parameters its rows condition reads (a granular restriction's), besides compartment membership. */
  params?: readonly string[];
}

/** A condition on every type's rows besides the scopes: patients' consents, security labels. */
export interface RowRestriction {
  /** SQL the rows of `type` (alias `alias`) must meet, apart from labels; undefined: no condition. */
  rows(type: string, alias: string): Sql | undefined;
  /** SQL the rows must meet for their security labels; undefined: none withheld for labels. */
  labels?(type: string, alias: string): Sql | undefined;
  /**
   * With `labels`: SQL true of every row carrying a label this restriction may withhold by (a cheap
   * superset of the rows `labels` rejects, on the labels column and its index of labelled rows).
   */
  carriesWithheldLabel?(alias: string): Sql;
  /** Patient records exempt under break-the-glass (see AccessPolicy.brokenGlass). */
  readonly brokenGlass?: readonly string[];
}

const INTERACTION_NAMES: Record<Interaction, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/**
 * The grants of a token's scopes. `system/` and `user/` scopes reach the type's rows (a user's reach is
 * then narrowed by the restrictions: consent, labels); `patient/` scopes reach only the patient
 * context's compartment and grant nothing without a patient context. A granular restriction
 * (`?category=...`) is compiled with the search filters, so it means exactly what the same search means.
 */
export function grantsOf(scopes: readonly Scope[], patientRecords: readonly string[] | undefined): Grant[] {
  const grants: Grant[] = [];
  for (const scope of scopes) {
    if (scope.context === 'patient' && !patientRecords?.length) {
      continue;
    }
    const compartment = scope.context === 'patient' ? (patientRecords as string[]) : undefined;
    const filters = scope.restriction ? restrictionFilters(scope.restriction) : undefined;
    if (!compartment && !filters) {
      grants.push({ type: scope.resourceType, interactions: scope.interactions });
      continue;
    }
    grants.push({
      type: scope.resourceType,
      interactions: scope.interactions,
      params: filters?.map((f) => f.code.split('.')[0]),
      rows: (type, alias) => {
        const parts: Sql[] = [];
        if (compartment) {
          parts.push(inCompartment(type, alias, compartment));
        }
        if (filters) {
          parts.push(...filtersCondition(type, alias, filters));
        }
        return parts.length
          ? { sql: parts.map((p) => `(${p.sql})`).join(' AND '), params: parts.flatMap((p) => p.params) }
          : { sql: '1 = 1', params: [] };
      },
    });
  }
  return grants;
}

function restrictionFilters(restriction: URLSearchParams): Filter[] {
  return [...restriction].map(([key, value]) => {
    const [code, operator] = key.split(':');
    return { code, operator: (operator ?? 'eq') as Filter['operator'], value };
  });
}

/**
 * Rows in the compartment of any of `patients` (a person's records, see personRecords): the Patient
 * records themselves, and resources of compartment types through the compartment table. Types outside
 * the Patient compartment (Practitioner, Organization, Medication, ...) hold nobody's data and stay
 * reachable.
 */
export function inCompartment(type: string, alias: string, patients: readonly string[]): Sql {
  const list = patients.map(() => '?').join(', ');
  if (type === 'Patient') {
    return { sql: `${alias}.id IN (${list})`, params: [...patients] };
  }
  if (!isPatientCompartmentType(type)) {
    return { sql: '1 = 1', params: [] };
  }
  return {
    sql: `EXISTS (SELECT 1 FROM compartment pc WHERE ${ownIndexRows('pc', `${alias}.rk`)} AND pc.patient_id IN (${list}))`,
    params: [...patients],
  };
}
