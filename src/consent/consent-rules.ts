import type { Consent, ConsentProvision, Reference } from '@medplum/fhirtypes';
import { badRequest } from '../fhir/outcome.js';
import { isSensitivityKind } from '../labels/labeler.js';
import { ACT_CODE } from '../labels/sensitivity-value-sets.js';

/**
 * A patient's consent as rows the access policy can query: each row says that, for one patient record,
 * data of one kind (or all) is permitted or denied to an actor (or anyone), for a purpose (or any),
 * except for some purposes or actors, within a period.
 *
 * The forms of IHE Privacy Consent on FHIR map as follows:
 * - basic: `provision.type` permit (opt-in) or deny (opt-out) and nothing else: one row, effect only;
 * - intermediate: `provision.actor` (organizations, practitioners) and `provision.period`;
 * - advanced: `provision.securityLabel` (data classes: ETH, PSY, HIV, ... as in src/labels) and
 *   `provision.purpose` (v3-ActReason: TREAT, ETREAT, HPAYMT, ...).
 * Every nested provision is a row of its own, narrowed by its parent's actors, purposes, classes and
 * period ("permit, except deny Organization/9" is a permit row and a deny row for that actor). A permit
 * nested in a deny is also an exception to it: "deny, except permit for TREAT" (permit treatment only)
 * is a deny row whose purposesExcept is TREAT, and a permit row for TREAT.
 */
export interface ConsentRule {
  effect: 'permit' | 'deny';
  /** `Organization/{id}`, `Practitioner/{id}`, ...; undefined: anyone. */
  actors?: string[];
  purposes?: string[];
  /** A sensitivity kind (security label code); undefined: all data. */
  kinds?: string[];
  actorsExcept?: string[];
  purposesExcept?: string[];
  start?: number;
  end?: number;
}

export const CONSENT_SCOPE_PRIVACY = 'patient-privacy';

/** The rules of a Consent, or none when it is not an active privacy consent. Malformed provisions are 400. */
export function consentRules(consent: Consent): ConsentRule[] {
  if (consent.status !== 'active' || !isPrivacyConsent(consent) || !consent.provision) {
    return [];
  }
  return provisionRules(consent.provision);
}

/** The patient record a Consent is about (`Consent.patient`), as an id. */
export function consentPatient(consent: Consent): string | undefined {
  const ref = consent.patient?.reference;
  return ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : undefined;
}

function isPrivacyConsent(consent: Consent): boolean {
  return (consent.scope?.coding ?? []).some((c) => c.code === CONSENT_SCOPE_PRIVACY);
}

function provisionRules(provision: ConsentProvision, inherited: Partial<ConsentRule> = {}): ConsentRule[] {
  const effect = provision.type ?? (inherited.effect as ConsentRule['effect'] | undefined);
  if (effect !== 'permit' && effect !== 'deny') {
    throw badRequest('A privacy Consent provision needs a type (permit or deny)', 'Consent.provision.type');
  }
  const own: ConsentRule = {
    ...inherited,
    effect,
    actors: listOr(provision.actor?.map((a) => actorReference(a.reference)), inherited.actors),
    purposes: listOr(provision.purpose?.map((p) => p.code as string).filter(Boolean), inherited.purposes),
    kinds: listOr(provision.securityLabel?.map(labelKind), inherited.kinds),
    start: provision.period?.start ? Date.parse(provision.period.start) : inherited.start,
    end: provision.period?.end ? endOf(provision.period.end) : inherited.end,
  };
  const rules = [own];
  for (const nested of provision.provision ?? []) {
    const nestedType = nested.type ?? effect;
    if (effect === 'deny' && nestedType === 'permit') {
      // "Deny, except permit for TREAT / to Organization/1": the deny does not apply to those purposes or
      // actors (and, in an opt-in community, the nested permit is a permit of its own below).
      if (!nested.purpose?.length && !nested.actor?.length) {
        throw badRequest('A permit nested in a deny must name the purposes or actors it excepts', 'Consent.provision.provision');
      }
      own.purposesExcept = [...(own.purposesExcept ?? []), ...(nested.purpose ?? []).map((p) => p.code as string)];
      own.actorsExcept = [...(own.actorsExcept ?? []), ...(nested.actor ?? []).map((a) => actorReference(a.reference))];
    }
    rules.push(...provisionRules(nested, { ...own, effect: nestedType, purposesExcept: undefined, actorsExcept: undefined }));
  }
  return rules.map((r) => ({ ...r, purposesExcept: nonEmpty(r.purposesExcept), actorsExcept: nonEmpty(r.actorsExcept) }));
}

function listOr(values: string[] | undefined, inherited: string[] | undefined): string[] | undefined {
  return values?.length ? values : inherited;
}

function nonEmpty(values: string[] | undefined): string[] | undefined {
  return values?.length ? values : undefined;
}

function actorReference(reference: Reference): string {
  const ref = reference.reference ?? '';
  if (!/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(ref)) {
    throw badRequest(`A Consent actor must be a relative reference such as Organization/123, not "${ref}"`, 'Consent.provision.actor.reference');
  }
  return ref;
}

function labelKind(label: { system?: string; code?: string }): string {
  if (label.system !== ACT_CODE || !isSensitivityKind(label.code)) {
    throw badRequest(`Consent securityLabel ${label.system ?? ''}|${label.code ?? ''} is not a data class Tessera labels (v3-ActCode ETH, PSY, HIV, STD, SEX, GDIS, SDV)`, 'Consent.provision.securityLabel');
  }
  return label.code;
}

/** A period end given as a date covers that whole day. */
function endOf(value: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(value) + 86_400_000 - 1 : Date.parse(value);
}
