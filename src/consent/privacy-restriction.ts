import type { RowRestriction } from '../engine/access-policy.js';
import type { RestrictionSource } from '../engine/request-policy.js';
import { labelMask } from '../labels/label-bits.js';
import { ACT_CODE, CONFIDENTIALITY, SENSITIVITY_DISPLAY, type SensitivityKind } from '../labels/sensitivity-value-sets.js';
import { isPatientCompartmentType } from '../search/compartment.js';
import type { Sql } from '../search/filter-sql.js';
import type { AuthContext } from '../security/token-service.js';
import type { Dialect, SqlValue } from '../store/database.js';
import { ownIndexRows } from '../store/index-writer.js';
import type { Repository } from '../store/repository.js';
import { doesPrivacyWork } from '../users/user-directory.js';
import { activeBreakTheGlass } from './break-the-glass.js';
import { holderOf, privacyFacts } from './privacy-facts.js';

export type ConsentDefault = 'opt-out' | 'opt-in';

/** Who is asking, in the terms consent rules name: actors (organization, the user's resource), purpose. */
export interface Requester {
  holder: string;
  actors: string[];
  purpose?: string;
}

/**
 * What patients' consents and the data's security labels take away from a caller's reach, as one row
 * condition of the access policy:
 * - consent: rows in the compartment of a patient whose applicable deny rule covers them (all data, or
 *   data of a labelled kind) are withheld; in an opt-in community, rows of a patient without an
 *   applicable permit are withheld too;
 * - labels: rows labelled with a sensitivity kind the caller has no clearance for are withheld unless the
 *   patient's consent permits that kind to the caller; very restricted (V) rows are withheld from all
 *   but callers cleared for V;
 * - break-the-glass: the person it was declared for is exempt from both for the caller, until it expires;
 * - Consent resources are not withheld by consent from those who record and revoke them (see
 *   administersConsents): an opt-out would otherwise hide itself from everyone who could revoke it.
 */
export function privacyRestrictionSource(consentDefault: ConsentDefault): RestrictionSource {
  return async (repo: Repository, auth: AuthContext, patientRecords: readonly string[] | undefined) => {
    const now = Date.now();
    const holder = holderOf(auth);
    const facts = await privacyFacts(repo.sql, auth, now);
    const requester = requesterOf(auth, holder, facts.organization);
    const clearance = new Set(facts.kinds?.split(',').filter(Boolean) ?? []);
    const glass = facts.glass ? await activeBreakTheGlass(repo, holder) : [];
    const exempt = [...glass];
    // A patient reading their own record (every record of theirs the MPI links) is not withheld from by
    // their own consent or by labels: it is their right of access. A clinician's launch context is not this.
    if (auth.user?.role === 'patient' && patientRecords) exempt.push(...patientRecords);
    const consents = facts.consents;
    const withheldKinds = (Object.keys(SENSITIVITY_DISPLAY) as SensitivityKind[]).filter((k) => !clearance.has(k) && !clearance.has('*'));
    const withholdV = !clearance.has('V') && !clearance.has('*');
    if (!consents && consentDefault === 'opt-out' && !withheldKinds.length && !withholdV) {
      return undefined;
    }
    return new PrivacyRestriction(requester, consentDefault, consents, withheldKinds, withholdV, exempt, glass, administersConsents(auth), now, repo.db.dialect);
  };
}

/**
 * Whether the caller records and revokes patients' consents: privacy officers, and backend clients whose
 * system scopes update or delete any Consent (the systems an operator trusts to record them, e.g. a
 * participant's registration feed). Their scopes still decide whether they may read Consent at all.
 */
function administersConsents(auth: AuthContext): boolean {
  if (auth.user) return doesPrivacyWork(auth.user.role);
  return auth.scopes.some((s) => s.context === 'system' && !s.restriction && (s.resourceType === 'Consent' || s.resourceType === '*') && (s.interactions.has('u') || s.interactions.has('d')));
}

/** Who asks, as consent rules name them: the organization (the user's, or the client's participant's) and the user. */
function requesterOf(auth: AuthContext, holder: string, participantOrganization: string | null): Requester {
  const actors: string[] = [];
  const organization = auth.organization ?? (auth.user || !participantOrganization ? undefined : `Organization/${participantOrganization}`);
  if (organization) actors.push(organization);
  if (auth.user?.fhirUser) actors.push(auth.user.fhirUser);
  return { holder, actors, purpose: auth.purposeOfUse };
}

/** Where a condition's template holds the request's time (the consent periods are compared with it). */
const NOW = Symbol('now');
/** A condition whose values may hold NOW. */
interface Template {
  sql: string;
  params: (SqlValue | typeof NOW)[];
}
/** Conditions built, by restriction fingerprint and then by condition (a few per caller). */
const sharedConditions = new Map<string, Map<string, Template | undefined>>();
const SHARED_FINGERPRINTS = 256;

class PrivacyRestriction implements RowRestriction {
  constructor(
    private readonly requester: Requester,
    private readonly consentDefault: ConsentDefault,
    private readonly consents: boolean,
    private readonly withheldKinds: SensitivityKind[],
    private readonly withholdV: boolean,
    /** Patient records the caller has broken the glass for. */
    private readonly exempt: string[],
    /** Of those, the records under a running break-the-glass grant (its uses are flagged in the audit). */
    readonly brokenGlass: readonly string[],
    /** Whether Consent resources are exempt from consent rules for this caller (administersConsents). */
    private readonly consentsOpen: boolean,
    private readonly now: number,
    private readonly dialect: Dialect,
  ) {
    this.fence = dialect.name === 'postgres' ? ' OFFSET 0' : ' LIMIT 1';
    this.withheldMask = labelMask(withheldKinds, withholdV);
    const fingerprint = JSON.stringify([dialect.name, requester.actors, requester.purpose ?? null, consentDefault, consents, withheldKinds, withholdV, exempt, consentsOpen]);
    let templates = sharedConditions.get(fingerprint);
    if (!templates) {
      if (sharedConditions.size >= SHARED_FINGERPRINTS) sharedConditions.clear();
      sharedConditions.set(fingerprint, (templates = new Map()));
    }
    this.templates = templates;
  }

  /** The `labels` column bits of what this caller is not cleared for (label-bits.ts). */
  private readonly withheldMask: number;

  /**
   * Appended inside each nested EXISTS and NOT EXISTS subquery, so that each stays a per-row lookup
   * through the row's own index rows and its patients' rules. PostgreSQL turns NOT EXISTS into an
   * anti-join; with the nested conditions below it then chose a sequential scan of sp_token per row (a
   * search went from 4 to 30 ms): OFFSET 0 prevents it. SQLite turns EXISTS over consent_rule into a join,
   * and with statistics taken while the table was small it builds a Bloom filter from every rule each
   * time the subquery runs (100,000 rules: a 20-row search from 0.3 to 14 ms): LIMIT 1, which changes
   * nothing an EXISTS sees, keeps the subquery whole. test/consent-query-plan.test.ts.
   */
  private readonly fence: string;

  /**
   * The conditions built for every request with this restriction's fingerprint (what decides their text
   * and values, all but the clock: requests of one caller share it), as templates holding NOW where the
   * request's time goes. Building one is string work over every clause, and a search asks for several.
   * Nothing here outlives a consent: the fingerprint holds what this request's own look-up of consents,
   * clearance and grants found.
   */
  private readonly templates: Map<string, Template | undefined>;
  /** The same conditions with this request's time, as handed out (a search asks for some more than once). */
  private readonly resolved = new Map<string, Sql | undefined>();

  private memo(key: string, build: () => Template | undefined): Sql | undefined {
    if (this.resolved.has(key)) return this.resolved.get(key);
    if (!this.templates.has(key)) this.templates.set(key, build());
    const template = this.templates.get(key);
    const sql = template && { sql: template.sql, params: template.params.map((p) => (p === NOW ? this.now : p)) };
    this.resolved.set(key, sql);
    return sql;
  }

  rows(type: string, alias: string): Sql | undefined {
    return this.memo(`rows|${type}|${alias}`, () => this.buildRows(type, alias));
  }

  labels(type: string, alias: string): Sql | undefined {
    return this.memo(`labels|${type}|${alias}`, () => this.buildLabels(type, alias));
  }

  private buildRows(type: string, alias: string): Template | undefined {
    const parts: Template[] = [];
    const patientData = isPatientCompartmentType(type) && !(type === 'Consent' && this.consentsOpen);
    if (patientData && this.consents) {
      parts.push(this.notDenied(alias));
    }
    if (patientData && this.consentDefault === 'opt-in') {
      parts.push(this.permitted(alias));
    }
    if (!parts.length) return undefined;
    return { sql: parts.map((p) => p.sql).join(' AND '), params: parts.flatMap((p) => p.params) };
  }


  /**
   * No applicable deny rule of a patient whose compartment holds the row (and who is not exempt). Nested
   * from the row's own compartment rows to each patient's rules rather than joined: with a small
   * consent_rule table (48 rules) PostgreSQL began the join there and read every deny rule for each row;
   * nested, the plan goes through the row's compartment rows whatever the table's statistics say.
   */
  private notDenied(alias: string): Template {
    const applicable = this.applicable('deny');
    const exempt = this.notExempt('pc.patient_id');
    return {
      sql: `NOT EXISTS (SELECT 1 FROM compartment pc WHERE ${ownIndexRows('pc', `${alias}.rk`)} ${exempt.sql}
              AND EXISTS (SELECT 1 FROM consent_rule cr WHERE cr.patient_id = pc.patient_id AND ${applicable.sql}
                AND (cr.kind IS NULL OR EXISTS (SELECT 1 FROM sp_token ck WHERE ${ownIndexRows('ck', `${alias}.rk`)} AND ck.code = '_security' AND ck.system = ? AND ck.value = cr.kind))${this.fence})${this.fence})`,
      params: [...exempt.params, ...applicable.params, ACT_CODE],
    };
  }

  /** Opt-in: every patient whose compartment holds the row has an applicable permit of all data (or is exempt). */
  private permitted(alias: string): Template {
    const applicable = this.applicable('permit');
    const exempt = this.notExempt('pc.patient_id');
    return {
      sql: `NOT EXISTS (SELECT 1 FROM compartment pc WHERE ${ownIndexRows('pc', `${alias}.rk`)} ${exempt.sql}
              AND NOT EXISTS (SELECT 1 FROM consent_rule cr WHERE cr.patient_id = pc.patient_id AND cr.kind IS NULL AND ${applicable.sql})${this.fence})`,
      params: [...exempt.params, ...applicable.params],
    };
  }

  /**
   * No label the caller may not see: a withheld kind passes only where the patient's consent permits that
   * kind to the caller (or the patient is exempt); V never passes without clearance.
   */
  private buildLabels(type: string, alias: string): Template | undefined {
    const parts: Template[] = [];
    // Break-the-glass lifts every label for the person it was declared for.
    const exempt = isPatientCompartmentType(type) && this.exempt.length ? this.exempt : [];
    const notExempt = exempt.length
      ? `AND NOT EXISTS (SELECT 1 FROM compartment px WHERE ${ownIndexRows('px', `${alias}.rk`)} AND px.patient_id IN (${exempt.map(() => '?').join(', ')}))`
      : '';
    if (this.withheldKinds.length) {
      const kinds = this.withheldKinds.map(() => '?').join(', ');
      const permit = this.applicable('permit');
      parts.push({
        sql: `NOT EXISTS (SELECT 1 FROM sp_token lt WHERE ${ownIndexRows('lt', `${alias}.rk`)} AND lt.code = '_security' AND lt.system = ? AND lt.value IN (${kinds})
                AND NOT EXISTS (SELECT 1 FROM compartment pc WHERE ${ownIndexRows('pc', `${alias}.rk`)}
                  AND EXISTS (SELECT 1 FROM consent_rule cr WHERE cr.patient_id = pc.patient_id AND cr.kind = lt.value AND ${permit.sql}${this.fence}))
                ${notExempt}${this.fence})`,
        params: [ACT_CODE, ...this.withheldKinds, ...permit.params, ...exempt],
      });
    }
    if (this.withholdV) {
      parts.push({
        sql: `NOT EXISTS (SELECT 1 FROM sp_token lv WHERE ${ownIndexRows('lv', `${alias}.rk`)} AND lv.code = '_security' AND lv.system = ? AND lv.value = 'V' ${notExempt}${this.fence})`,
        params: [CONFIDENTIALITY, ...exempt],
      });
    }
    if (!parts.length) return undefined;
    // A row without any label withheld from this caller (most rows) passes on its labels column alone.
    return { sql: `((${alias}.labels & ?) = 0 OR (${parts.map((p) => p.sql).join(' AND ')}))`, params: [this.withheldMask, ...parts.flatMap((p) => p.params)] };
  }

  /** Rows with a label withheld from this caller: a bit of the mask (`labels <> 0` first, for the index of labelled rows). */
  carriesWithheldLabel(alias: string): Sql {
    return { sql: `${alias}.labels <> 0 AND (${alias}.labels & ?) <> 0`, params: [this.withheldMask] };
  }

  /** SQL over `cr` (a consent_rule row): it applies to this caller, now, with this effect. */
  private applicable(effect: 'permit' | 'deny'): Template {
    const { actors, purpose } = this.requester;
    const params: Template['params'] = [effect, NOW, NOW];
    const anyActor = (column: string) => {
      if (!actors.length) return 'FALSE_';
      params.push(...actors.map((a) => `,${a},`));
      return `(${actors.map(() => this.dialect.contains(column)).join(' OR ')})`;
    };
    const clauses = ['cr.effect = ?', '(cr.start_ms IS NULL OR cr.start_ms <= ?)', '(cr.end_ms IS NULL OR cr.end_ms >= ?)'];
    const actorMatch = anyActor('cr.actors');
    clauses.push(actorMatch === 'FALSE_' ? 'cr.actors IS NULL' : `(cr.actors IS NULL OR ${actorMatch})`);
    const exceptMatch = anyActor('cr.actors_except');
    clauses.push(exceptMatch === 'FALSE_' ? '1 = 1' : `(cr.actors_except IS NULL OR NOT ${exceptMatch})`);
    if (purpose) {
      clauses.push(`(cr.purposes IS NULL OR ${this.dialect.contains('cr.purposes')})`, `(cr.purposes_except IS NULL OR NOT ${this.dialect.contains('cr.purposes_except')})`);
      params.push(`,${purpose},`, `,${purpose},`);
    } else if (effect === 'permit') {
      // No declared purpose: a permit for particular purposes, or one that excepts some, does not apply.
      clauses.push('cr.purposes IS NULL', 'cr.purposes_except IS NULL');
    }
    // (A deny applies whatever purposes it names or excepts: a caller who declares none may be acting for
    // any of them. Withhold more, never less.)
    return { sql: clauses.join(' AND '), params };
  }

  private notExempt(column: string): Template {
    if (!this.exempt.length) return { sql: '', params: [] };
    return { sql: `AND ${column} NOT IN (${this.exempt.map(() => '?').join(', ')})`, params: [...this.exempt] };
  }
}
