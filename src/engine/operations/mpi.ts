import { splitToken } from '../../search/token-value.js';
import type { Bundle, Parameters, ParametersParameter, Patient } from '@medplum/fhirtypes';
import { badRequest, fhirError } from '../../fhir/outcome.js';
import { crossReference } from '../../mpi/cross-reference.js';
import { MpiStore, type MpiEventRecord, type PairRecord, type PairStatus } from '../../mpi/mpi-store.js';
import { PatientLinker } from '../../mpi/patient-linker.js';
import { validateFhirResource } from '../../fhir/validation.js';
import { matchPerson } from '../../mpi/patient-match.js';
import { Stewardship, type ReviewDecision } from '../../mpi/stewardship.js';
import { ID_RE, type Repository } from '../../store/repository.js';
import { authorize, policyOf, type FhirRequest, type FhirResponse } from '../fhir-request.js';
import { OperationInput } from '../operation-input.js';

const MATCH_GRADE_URL = 'http://hl7.org/fhir/StructureDefinition/match-grade';

type Handler = (repo: Repository, linker: PatientLinker, input: OperationInput, req: FhirRequest) => Promise<FhirResponse>;

interface Operation {
  methods: string[];
  /** What the caller's scopes must allow on Patient. */
  needs: ('r' | 's' | 'u')[];
  /**
   * 'every': the steward's work spans every record, so it needs access to every Patient; 'own': the
   * answer is cut down to the Patients the caller may reach.
   */
  reach: 'every' | 'own';
  run: Handler;
}

/**
 * The master patient index's operations on Patient: FHIR $match, IHE PIXm $ihe-pix, and the data
 * steward's review queue, decisions, links, merges and event log (docs/matching.md). Decisions need
 * update rights on Patient; they are recorded under the caller's client id.
 */
const OPERATIONS: Record<string, Operation> = {
  $match: { methods: ['POST'], needs: ['s'], reach: 'own', run: match },
  '$ihe-pix': { methods: ['GET', 'POST'], needs: ['s'], reach: 'own', run: pix },
  '$mpi-review-queue': { methods: ['GET'], needs: ['r', 's'], reach: 'every', run: reviewQueue },
  '$mpi-review': { methods: ['POST'], needs: ['u'], reach: 'every', run: (repo, _l, input, req) => steward(repo, req, (s) => s.review(patientRef(input, 'patient'), patientRef(input, 'other'), decision(input), input.string('reason'))) },
  '$mpi-link': { methods: ['POST'], needs: ['u'], reach: 'every', run: (repo, _l, input, req) => steward(repo, req, (s) => s.link(patientRef(input, 'patient'), patientRef(input, 'target'), input.string('reason'))) },
  '$mpi-unlink': { methods: ['POST'], needs: ['u'], reach: 'every', run: (repo, _l, input, req) => steward(repo, req, (s) => s.unlink(patientRef(input, 'patient'), input.string('reason'))) },
  '$mpi-merge': { methods: ['POST'], needs: ['u'], reach: 'every', run: (repo, _l, input, req) => steward(repo, req, (s) => s.merge(patientRef(input, 'source'), patientRef(input, 'target'), input.string('reason'))) },
  '$mpi-unmerge': { methods: ['POST'], needs: ['u'], reach: 'every', run: (repo, _l, input, req) => steward(repo, req, (s) => s.unmerge(patientRef(input, 'source'), input.string('reason'))) },
  '$mpi-events': { methods: ['GET'], needs: ['r', 's'], reach: 'every', run: events },
};

export function isMpiOperation(segment: string): boolean {
  return Object.hasOwn(OPERATIONS, segment);
}

export async function mpiOperation(repo: Repository, name: string, req: FhirRequest): Promise<FhirResponse> {
  const operation = OPERATIONS[name];
  if (!operation.methods.includes(req.method)) {
    throw fhirError(405, 'not-supported', `${name} takes ${operation.methods.join(' or ')}`);
  }
  if (operation.reach === 'every') policyOf(req).requireRole(['steward', 'admin'], `Patient/${name}`);
  for (const interaction of operation.needs) {
    if (operation.reach === 'every') {
      policyOf(req).requireUnrestricted('Patient', interaction, `Patient/${name}`);
    } else {
      authorize(req, 'Patient', interaction);
    }
  }
  const linker = repo.observerOf(PatientLinker);
  if (!linker) {
    throw fhirError(501, 'not-supported', 'The master patient index is turned off on this server (TESSERA_MPI=0)');
  }
  return operation.run(repo, linker, OperationInput.from(req), req);
}

/** A Patient given as `Patient/{id}` or a bare id. */
function patientRef(input: OperationInput, name: string): string {
  const value = input.required(name).replace(/^Patient\//, '');
  if (!ID_RE.test(value)) {
    throw badRequest(`Operation parameter "${name}" must reference a Patient`);
  }
  return value;
}

function decision(input: OperationInput): ReviewDecision {
  const value = input.required('decision');
  if (value !== 'accept' && value !== 'reject') {
    throw badRequest('Operation parameter "decision" must be accept or reject');
  }
  return value;
}

/** Runs a steward's decision in one transaction and answers with the enterprise records it left. */
async function steward(repo: Repository, req: FhirRequest, act: (s: Stewardship) => Promise<string[]>): Promise<FhirResponse> {
  const actor = req.auth?.clientId ?? 'system';
  const touched = await repo.transaction((tx) => act(new Stewardship(tx, actor)));
  const records = await repo.readMany('Patient', [...new Set(touched)]);
  const parameter: ParametersParameter[] = records.map((resource) => ({ name: 'enterprise', resource }));
  return { status: 200, body: { resourceType: 'Parameters', parameter } satisfies Parameters };
}

async function match(repo: Repository, linker: PatientLinker, input: OperationInput, req: FhirRequest): Promise<FhirResponse> {
  const patient = input.resource('resource');
  if (patient?.resourceType !== 'Patient') {
    throw badRequest('Patient/$match needs a Patient in the "resource" parameter');
  }
  // The same checks as a create: a birth date that could not be stored is no basis for a match either.
  validateFhirResource(patient, 'Patient');
  const onlyCertain = input.boolean('onlyCertainMatches') ?? false;
  const count = input.integer('count', 1, 100) ?? 10;
  const candidates = await matchPerson(repo, linker, patient as Patient);
  const reachable = await policyOf(req).reachable(repo, candidates.map((m) => ({ type: 'Patient', id: m.golden.id as string })), 'r');
  let matches = candidates.filter((m) => reachable.has(`Patient/${m.golden.id}`));
  if (onlyCertain) {
    // R4: with onlyCertainMatches, several candidates are no answer at all.
    const certain = matches.filter((m) => m.grade === 'certain');
    matches = certain.length === 1 ? certain : [];
  }
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: Math.min(matches.length, count),
    entry: matches.slice(0, count).map((m) => ({
      fullUrl: `${req.baseUrl}/Patient/${m.golden.id}`,
      resource: m.golden,
      search: { mode: 'match', score: Math.round(m.score * 1000) / 1000, extension: [{ url: MATCH_GRADE_URL, valueCode: m.grade }] },
    })),
  };
  return { status: 200, body: bundle };
}

async function pix(repo: Repository, _linker: PatientLinker, input: OperationInput, req: FhirRequest): Promise<FhirResponse> {
  const sources = input.strings('sourceIdentifier');
  if (sources.length !== 1) {
    throw badRequest('$ihe-pix needs exactly one sourceIdentifier (system|value)');
  }
  const { system, code: value } = splitToken(sources[0]);
  if (!system || !value) {
    throw badRequest('sourceIdentifier must give both the assigning authority and the value: system|value');
  }
  const crossReferenced = await crossReference(repo.sql, system, value, input.strings('targetSystem'));
  const reachable = await policyOf(req).reachable(repo, crossReferenced.map((r) => ({ type: 'Patient', id: r.patientId })), 'r');
  const found = crossReferenced.filter((r) => reachable.has(`Patient/${r.patientId}`));
  const parameter: ParametersParameter[] = found.flatMap((r) => [
    { name: 'targetIdentifier', valueIdentifier: r.identifier },
    { name: 'targetId', valueReference: { reference: `Patient/${r.patientId}` } },
  ]);
  return { status: 200, body: { resourceType: 'Parameters', parameter } satisfies Parameters };
}

async function reviewQueue(repo: Repository, _linker: PatientLinker, input: OperationInput): Promise<FhirResponse> {
  const status = (input.string('status') ?? 'open') as PairStatus;
  if (!['open', 'accepted', 'rejected'].includes(status)) {
    throw badRequest('status must be open, accepted or rejected');
  }
  const store = new MpiStore(repo.sql);
  const { pairs, total } = await store.pairs(status, input.integer('_count', 1, 500) ?? 50, input.integer('_offset', 0, Number.MAX_SAFE_INTEGER) ?? 0);
  const parameter: ParametersParameter[] = [{ name: 'total', valueInteger: total }];
  // Every listed record's enterprise in one query, not two per pair.
  const enterprises = await store.enterpriseIdsOf(pairs.flatMap((p) => [p.patientA, p.patientB]));
  for (const pair of pairs) {
    parameter.push({ name: 'pair', part: pairParts(enterprises, pair) });
  }
  return { status: 200, body: { resourceType: 'Parameters', parameter } satisfies Parameters };
}

/** One pair for a steward: both records and their enterprises, the score, and why (per field). */
function pairParts(enterprises: Map<string, string>, pair: PairRecord): ParametersParameter[] {
  const parts: ParametersParameter[] = [];
  for (const [name, id] of [['patient', pair.patientA], ['other', pair.patientB]] as const) {
    parts.push({ name, valueReference: { reference: `Patient/${id}` } });
    const enterpriseId = enterprises.get(id);
    if (enterpriseId) {
      parts.push({ name: `${name}Enterprise`, valueReference: { reference: `Patient/${enterpriseId}` } });
    }
  }
  parts.push({ name: 'status', valueCode: pair.status }, { name: 'score', valueDecimal: Math.round(pair.score * 100) / 100 });
  parts.push({ name: 'opened', valueInstant: new Date(pair.createdAt).toISOString() });
  const detail = pair.detail as { contributions?: { field: string; level: string; weight: number; system?: string }[]; vetoes?: string[] };
  for (const c of detail.contributions ?? []) {
    parts.push({
      name: 'contribution',
      part: [
        { name: 'field', valueCode: c.field },
        { name: 'level', valueCode: c.level },
        { name: 'weight', valueDecimal: Math.round(c.weight * 100) / 100 },
        ...(c.system ? [{ name: 'system', valueUri: c.system }] : []),
      ],
    });
  }
  for (const veto of detail.vetoes ?? []) {
    parts.push({ name: 'veto', valueString: veto });
  }
  if (pair.decidedAt !== undefined) {
    parts.push({ name: 'decided', valueInstant: new Date(pair.decidedAt).toISOString() }, { name: 'decidedBy', valueString: pair.decidedBy ?? '' });
  }
  if (pair.reason) {
    parts.push({ name: 'reason', valueString: pair.reason });
  }
  return parts;
}

async function events(repo: Repository, _linker: PatientLinker, input: OperationInput): Promise<FhirResponse> {
  const store = new MpiStore(repo.sql);
  const list = await store.events(input.integer('after', 0, Number.MAX_SAFE_INTEGER) ?? 0, input.integer('_count', 1, 1000) ?? 100, {
    enterpriseId: input.string('enterprise')?.replace(/^Patient\//, ''),
    action: input.string('action'),
  });
  return { status: 200, body: { resourceType: 'Parameters', parameter: list.map((e) => ({ name: 'event', part: eventParts(e) })) } satisfies Parameters };
}

function eventParts(e: MpiEventRecord): ParametersParameter[] {
  const parts: ParametersParameter[] = [
    { name: 'seq', valueInteger: e.seq },
    { name: 'at', valueInstant: new Date(e.at).toISOString() },
    { name: 'actor', valueString: e.actor },
    { name: 'action', valueCode: e.action },
  ];
  if (e.enterpriseId) {
    parts.push({ name: 'enterprise', valueReference: { reference: `Patient/${e.enterpriseId}` } });
  }
  if (e.patientId) {
    parts.push({ name: 'patient', valueReference: { reference: `Patient/${e.patientId}` } });
  }
  if (e.reason) {
    parts.push({ name: 'reason', valueString: e.reason });
  }
  if (e.detail !== undefined) {
    parts.push({ name: 'detail', valueString: JSON.stringify(e.detail) });
  }
  return parts;
}
