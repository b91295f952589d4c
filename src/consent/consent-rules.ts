import type { Coding, Consent, ConsentProvision, Reference } from '@medplum/fhirtypes';
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
  if (consent.status !== 'active' || !isPrivacyConsent(consent)) {
    return [];
  }
  if (!consent.provision) {
    // The basic form may be the policy rule alone: OPTOUT denies all, OPTIN permits all (IHE PCF basic).
    const basic = effectOfPolicyRule(consent);
    return basic ? provisionRules({}, { effect: basic }) : [];
  }
  const effect = consent.provision.type ?? effectOfPolicyRule(consent);
  if (!effect) {
    throw badRequest('A privacy Consent needs provision.type (permit or deny), or a policyRule of OPTIN or OPTOUT', 'Consent.provision.type');
  }
  return provisionRules(consent.provision, { effect });
}

/**
 * What a privacy officer must be told when a Consent is stored: that it has no effect at all (an active
 * privacy consent that names no patient record Tessera can resolve, or says neither permit nor deny), or
 * that it names constraints Tessera does not enforce and how they were taken (the rule in provisionRules:
 * a deny covers all the patient's data, a permit is not applied). Empty when the Consent is taken as written.
 */
export function consentWarnings(consent: Consent): string[] {
  if (consent.status !== 'active' || !isPrivacyConsent(consent)) return [];
  if (!consentPatient(consent)) {
    return ['This privacy Consent has no effect: Consent.patient must be a relative reference to a Patient (Patient/{id}); an absolute URL or an identifier is not resolved'];
  }
  if (!consent.provision && !effectOfPolicyRule(consent)) {
    return ['This privacy Consent has no effect: it has no provision, and its policyRule is none of OPTIN, OPTINR, OPTOUT, OPTOUTE'];
  }
  const warnings: string[] = [];
  const visit = (provision: ConsentProvision, effect: string | undefined, path: string) => {
    const type = provision.type ?? effect;
    const named = unenforcedParts(provision);
    if (named.length) {
      const taken = type === 'deny' ? 'the deny is applied to all of the patient\'s data' : 'the permit is not applied';
      warnings.push(`${path}: ${named.join(', ')} ${named.length === 1 ? 'is' : 'are'} not enforced: ${taken}`);
    }
    (provision.provision ?? []).forEach((nested, i) => visit(nested, type, `${path}.provision[${i}]`));
  };
  if (consent.provision) visit(consent.provision, effectOfPolicyRule(consent), 'Consent.provision');
  return warnings;
}

/** A provision without a type takes it from the consent's policy rule (v3-ActCode OPTIN, OPTOUT, ...). */
function effectOfPolicyRule(consent: Consent): ConsentRule['effect'] | undefined {
  const codes = (consent.policyRule?.coding ?? []).map((c) => c.code);
  if (codes.some((c) => c === 'OPTIN' || c === 'OPTINR')) return 'permit';
  if (codes.some((c) => c === 'OPTOUT' || c === 'OPTOUTE')) return 'deny';
  return undefined;
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
  const kinds = (provision.securityLabel ?? []).filter(isLabelledKind).map((l) => l.code as string);
  // A permit narrowed by what Tessera cannot enforce is not applied (it would permit more than meant);
  // a deny narrowed by it applies to all of the patient's data (it withholds more than meant, never less).
  const unenforced = unenforcedParts(provision).length > 0;
  const own: ConsentRule = {
    ...inherited,
    effect,
    actors: listOr(provision.actor?.map((a) => actorReference(a.reference)), inherited.actors),
    purposes: listOr(provision.purpose?.map((p) => p.code as string).filter(Boolean), inherited.purposes),
    kinds: unenforced && effect === 'deny' ? undefined : listOr(kinds, inherited.kinds),
    start: provision.period?.start ? Date.parse(provision.period.start) : inherited.start,
    end: provision.period?.end ? endOf(provision.period.end) : inherited.end,
  };
  if (unenforced && effect === 'permit') {
    return (provision.provision ?? []).filter((n) => (n.type ?? effect) === 'deny').flatMap((n) => provisionRules(n, { ...own, purposesExcept: undefined, actorsExcept: undefined }));
  }
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

/** A security label naming a data class Tessera labels (a sensitivity kind), which a rule can enforce. */
function isLabelledKind(label: Coding): boolean {
  return label.system === ACT_CODE && isSensitivityKind(label.code);
}

/**
 * The constraints of a provision (its own, not its nested ones') Tessera cannot enforce, named for a
 * warning: data classes it does not label, resource classes, codes, named resources, data periods.
 */
function unenforcedParts(provision: ConsentProvision): string[] {
  const unlabelled = (provision.securityLabel ?? []).filter((l) => !isLabelledKind(l)).map((l) => l.code ?? '?');
  return [
    ...(unlabelled.length ? [`securityLabel ${unlabelled.join(', ')} (not a data class Tessera labels)`] : []),
    ...(['class', 'code', 'data', 'dataPeriod'] as const).filter((k) => (Array.isArray(provision[k]) ? (provision[k] as unknown[]).length : provision[k])),
  ];
}

function listOr(values: string[] | undefined, inherited: string[] | undefined): string[] | undefined {
  return values?.length ? values : inherited;
}

function nonEmpty(values: string[] | undefined): string[] | undefined {
  return values?.length ? values : undefined;
}

function actorReference(reference: Reference): string {
  const ref = reference.reference;
  if (!ref) {
    throw badRequest('A Consent actor needs a reference (e.g. Organization/123)', 'Consent.provision.actor.reference');
  }
  return ref;
}

/** A period end given as a date covers that whole day. */
function endOf(value: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(value) + 86_400_000 - 1 : Date.parse(value);
}
