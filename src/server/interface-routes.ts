import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../fhir/outcome.js';
import type { CcdaIntake } from '../ingest/ccda-intake.js';
import type { Hl7v2Intake } from '../ingest/hl7v2-intake.js';
import { replayMessage, ReplayNotSupportedError } from '../ingest/message-replay.js';
import { MESSAGE_STATUSES, MessageLog, type LoggedMessage, type MessageStatus } from '../messages/message-log.js';
import { addParticipant, listParticipants, participantById } from '../participants/participants.js';
import { listUnmapped } from '../codes/code-map-store.js';
import { policyFor } from '../engine/request-policy.js';
import { messageSubjects } from '../audit/audit-record.js';
import { recordDisclosure } from './route-disclosures.js';
import type { Interaction } from '../security/scopes.js';
import type { AuthContext } from '../security/token-service.js';
import type { Repository } from '../store/repository.js';

/**
 * The interface engine's own API (JSON, not FHIR): the message log and error queue, replay, and the
 * participant registry. Reading the log needs a scope over every resource type (a message can carry
 * anything about anyone: `system/*.rs`); replaying needs `system/*.cu`; participants are Organizations.
 */
/** Users who run the interfaces: the message log, replay, the participant list. */
const INTERFACE_ROLES = ['interface-analyst', 'admin'];

export function registerInterfaceRoutes(app: FastifyInstance, repo: Repository, intakes: { hl7v2: Hl7v2Intake; ccda: CcdaIntake }, authenticate: (req: FastifyRequest) => Promise<AuthContext>): void {
  const log = new MessageLog(repo.sql);
  // A message can carry anything about anyone, and a participant is a directory entry for all: these
  // need access to every row of the types named, not a patient's or a granular share of them.
  const requireEvery = async (auth: AuthContext, type: string, interactions: Interaction[], what: string, roles: readonly string[] = INTERFACE_ROLES) => {
    const policy = await policyFor(repo, auth);
    policy.requireRole(roles, what);
    for (const interaction of interactions) policy.requireUnrestricted(type, interaction, what, { labels: type === '*' });
  };

  app.get('/messages', async (req) => {
    const auth = await authenticate(req);
    await requireEvery(auth, '*', ['s'], 'The message log');
    const q = req.query as Record<string, string | undefined>;
    if (q.status && !MESSAGE_STATUSES.includes(q.status as MessageStatus)) {
      throw badRequest(`status must be one of ${MESSAGE_STATUSES.join(', ')}, not "${q.status}"`);
    }
    const messages = await log.list({
      status: q.status as MessageStatus | undefined,
      participantId: q.sender,
      type: q.type,
      patient: q.patient,
      since: time(q.since, 'since'),
      until: time(q.until, 'until'),
      before: q.before,
      limit: count(q._count),
    });
    for (const message of messages) recordDisclosure(req, messageSubjects(message));
    return { messages: messages.map(summary) };
  });

  app.get('/messages/:id', async (req) => {
    const auth = await authenticate(req);
    await requireEvery(auth, '*', ['r'], 'The message log');
    const message = await log.get((req.params as { id: string }).id);
    if (!message) throw notFound('No such message');
    recordDisclosure(req, messageSubjects(message));
    return { ...summary(message), raw: message.raw };
  });

  app.post('/messages/:id/replay', async (req) => {
    const auth = await authenticate(req);
    await requireEvery(auth, '*', ['c', 'u'], 'Replaying a message');
    let result;
    try {
      result = await replayMessage(repo, intakes, (req.params as { id: string }).id);
    } catch (err) {
      if (err instanceof ReplayNotSupportedError) throw badRequest(err.message);
      throw err;
    }
    if (!result) throw notFound('No such message');
    const message = (await log.get(result.messageId)) as LoggedMessage;
    recordDisclosure(req, messageSubjects(message));
    return { ...summary(message), ackCode: result.ackCode, ack: result.ack };
  });

  app.get('/participants', async (req) => {
    const auth = await authenticate(req);
    await requireEvery(auth, 'Organization', ['s'], 'The participant registry');
    return { participants: await listParticipants(repo) };
  });

  // The analyst's figures per participant, counted here rather than in the browser (which would need
  // the whole log): messages, failures and their rate over the window, channels, the last message ever.
  app.get('/participants/traffic', async (req) => {
    const auth = await authenticate(req);
    await requireEvery(auth, '*', ['s'], 'The message log');
    const q = req.query as Record<string, string | undefined>;
    const hours = q.hours === undefined ? 24 : Number(q.hours);
    if (!Number.isInteger(hours) || hours < 1 || hours > 24 * 366) throw badRequest(`hours must be a whole number from 1 to 8784, not "${q.hours}"`);
    const until = Date.now();
    const since = until - hours * 3600_000;
    const participants = await listParticipants(repo);
    const traffic = await log.traffic(since, participants.map((p) => p.id));
    return {
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      hours,
      participants: traffic.map((t) => ({
        participantId: t.participantId ?? null,
        name: t.participantId === undefined ? 'Unrecognised senders' : (participants.find((p) => p.id === t.participantId)?.name ?? t.participantId),
        messages: t.messages,
        failed: t.failed,
        errorRate: t.messages ? Math.round((t.failed / t.messages) * 1000) / 1000 : 0,
        perHour: Math.round((t.messages / hours) * 100) / 100,
        channels: t.channels,
        lastMessage: t.lastReceivedAt === undefined ? null : new Date(t.lastReceivedAt).toISOString(),
      })),
    };
  });

  // The local-code worklist (src/codes): local codes and their texts, with a sample message id; read
  // like the message log, whose messages it points into.
  app.get('/participants/:id/unmapped-codes', async (req) => {
    const auth = await authenticate(req);
    await requireEvery(auth, '*', ['s'], 'The unmapped-code worklist');
    const id = (req.params as { id: string }).id;
    if (!(await participantById(repo, id))) throw notFound('No such participant');
    return { participant: id, unmapped: await listUnmapped(repo.sql, id, count((req.query as Record<string, string | undefined>)._count) ?? 100) };
  });

  app.post('/participants', async (req, reply) => {
    const auth = await authenticate(req);
    await requireEvery(auth, 'Organization', ['c'], 'The participant registry', ['admin']);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const text = (key: string) => (typeof body[key] === 'string' ? (body[key] as string) : undefined);
    const name = text('name');
    const mrnSystem = text('mrnSystem');
    if (!name || !mrnSystem) throw badRequest('name and mrnSystem are required');
    // A participant with a scope gets an OAuth client of that scope: only a caller who could do all of it
    // (every type, every kind of sensitive data) may mint one, or a token could mint a wider one.
    if (text('scope')) await requireEvery(auth, '*', ['c', 'r', 'u', 'd', 's'], 'Registering a participant with an OAuth client', ['admin']);
    const created = await addParticipant(repo, { name, mrnSystem, hl7Facility: text('hl7Facility'), hl7Application: text('hl7Application'), scope: text('scope') });
    return reply.status(201).send(created);
  });
}

/** A log entry without the raw text (lists stay small; the raw message is in the detail). */
function summary(m: LoggedMessage) {
  const { raw: _raw, ...rest } = m;
  return { ...rest, receivedAt: new Date(m.receivedAt).toISOString(), finishedAt: m.finishedAt === undefined ? undefined : new Date(m.finishedAt).toISOString() };
}

function time(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw badRequest(`${name} must be a date or date-time, not "${value}"`);
  return t;
}

function count(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw badRequest(`_count must be a positive whole number, not "${value}"`);
  return n;
}
