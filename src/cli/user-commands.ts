import type { Command } from 'commander';
import { storeOptions, withStore as withStoreOf, type StoreFlags } from './store-command.js';
import { setClientDisabled } from '../security/clients.js';
import { setClearance } from '../consent/clearance.js';
import type { TesseraConfig } from '../server/config.js';
import type { Tessera } from '../server/tessera.js';
import { recordOperatorAction } from './operator-audit.js';
import { addUser, enrolTotp, findUserByIdOrEmail, listUsers, ROLES, setPassword, setUserDisabled } from '../users/user-directory.js';


/** A password from standard input (first line), so that it never appears in the process list or shell history. */
async function readPasswordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
}

/** `tessera users add|list|disable|enable|totp|password` and `tessera clients disable|enable` (docs/sign-in.md). */
export function registerUserCommands(program: Command, clients: Command, config: (flags: StoreFlags) => TesseraConfig): void {
  const withStore = (flags: StoreFlags, fn: (t: Tessera) => Promise<void>) => withStoreOf(config(flags), fn);
  const failing = (command: string, fn: () => Promise<void>) =>
    fn().catch((err: Error) => program.error(`tessera ${command}: ${err.message}`));

  const users = program.command('users').description('the user directory: people who sign in (SMART App Launch)');
  storeOptions(
    users
      .command('add')
      .description('add a user and print it as JSON; staff get a Practitioner and PractitionerRole at their Organization')
      .requiredOption('--name <name>', 'full name')
      .requiredOption('--email <email>', 'email (sign-in name; unique)')
      .requiredOption('--role <role>', ROLES.join(' | '))
      .requiredOption('--organization <id>', 'id of the Organization the user belongs to (e.g. a participant)')
      .option('--patient <id>', 'for role patient: the id of their own Patient')
      .option('--password-stdin', 'read the password from standard input (without it, only federated sign-in works)'),
  ).action(async (flags: StoreFlags & { name: string; email: string; role: string; organization: string; patient?: string; passwordStdin?: boolean }) => {
    const password = flags.passwordStdin ? await readPasswordFromStdin() : undefined;
    await withStore(flags, (t) =>
      failing('users add', async () => {
        const user = await addUser(t.repo, { name: flags.name, email: flags.email, role: flags.role, organization: flags.organization, patient: flags.patient, password });
        await recordOperatorAction(t, 'users add', `user:${user.id}`);
        process.stdout.write(`${JSON.stringify({ id: user.id, name: user.name, email: user.email, role: user.role, organization: user.organization, fhirUser: user.fhirUser }, null, 2)}\n`);
      }),
    );
  });
  storeOptions(users.command('list').description('list users')).action(async (flags: StoreFlags) => {
    await withStore(flags, async (t) => {
      const rows = await listUsers(t.db);
      for (const u of rows) {
        const flagsText = [u.disabled && 'disabled', u.lockedUntil && u.lockedUntil > Date.now() && 'locked', u.totpSecret && 'totp', u.oidcSubject && 'federated'].filter(Boolean).join(',');
        process.stdout.write(`${u.id}  ${u.email}  ${u.role}  ${u.organization}  ${u.fhirUser ?? '-'}${flagsText ? `  (${flagsText})` : ''}\n`);
      }
      process.stdout.write(`${rows.length} user(s)\n`);
    });
  });
  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    storeOptions(
      users
        .command(name)
        .description(disabled ? 'disable a user: sign-in and their tokens stop working at once' : 'enable a user again (also clears a lockout)')
        .argument('<user>', 'user id or email'),
    ).action(async (who: string, flags: StoreFlags) => {
      await withStore(flags, (t) =>
        failing(`users ${name}`, async () => {
          const user = await findUserByIdOrEmail(t.db, who);
          if (!user) throw new Error(`no user ${who}`);
          await setUserDisabled(t.db, user.id, disabled);
          await recordOperatorAction(t, `users ${name}`, `user:${user.id}`);
          process.stdout.write(`User ${user.id} ${disabled ? 'disabled' : 'enabled'}\n`);
        }),
      );
    });
    storeOptions(
      clients
        .command(name)
        .description(disabled ? 'disable a client: no new tokens, and its tokens stop working at once' : 'enable a client again')
        .argument('<id>', 'client id'),
    ).action(async (id: string, flags: StoreFlags) => {
      await withStore(flags, (t) =>
        failing(`clients ${name}`, async () => {
          if (!(await setClientDisabled(t.db, id, disabled))) throw new Error(`no client ${id}`);
          await recordOperatorAction(t, `clients ${name}`, `client:${id}`);
          process.stdout.write(`Client ${id} ${disabled ? 'disabled' : 'enabled'}\n`);
        }),
      );
    });
  }
  storeOptions(
    users
      .command('clearance')
      .description('which kinds of sensitive data a user reads without the patient\'s consent: e.g. HIV,STD, V, * (all) or none')
      .argument('<user>', 'user id or email')
      .argument('<kinds>', 'comma-separated kinds, * or none'),
  ).action(async (who: string, kinds: string, flags: StoreFlags) => {
    await withStore(flags, (t) =>
      failing('users clearance', async () => {
        const user = await findUserByIdOrEmail(t.db, who);
        if (!user) throw new Error(`no user ${who}`);
        const list = kinds === 'none' ? [] : kinds.split(',').map((k) => k.trim()).filter(Boolean);
        await setClearance(t.db, `user:${user.id}`, list);
        await recordOperatorAction(t, 'users clearance', `user:${user.id}`);
        process.stdout.write(`User ${user.id}: clearance ${list.length ? list.join(',') : 'none'}\n`);
      }),
    );
  });
  storeOptions(
    users
      .command('totp')
      .description('enrol a user for one-time codes (TOTP); prints the otpauth:// URI once, for their authenticator app')
      .argument('<user>', 'user id or email'),
  ).action(async (who: string, flags: StoreFlags) => {
    await withStore(flags, (t) =>
      failing('users totp', async () => {
        const user = await findUserByIdOrEmail(t.db, who);
        if (!user) throw new Error(`no user ${who}`);
        const uri = await enrolTotp(t.db, user);
        await recordOperatorAction(t, 'users totp', `user:${user.id}`);
        process.stdout.write(`${uri}\n`);
      }),
    );
  });
  storeOptions(
    users
      .command('password')
      .description("set a user's password (read from standard input); clears a lockout")
      .argument('<user>', 'user id or email')
      .requiredOption('--password-stdin', 'read the password from standard input'),
  ).action(async (who: string, flags: StoreFlags) => {
    const password = await readPasswordFromStdin();
    await withStore(flags, (t) =>
      failing('users password', async () => {
        const user = await findUserByIdOrEmail(t.db, who);
        if (!user) throw new Error(`no user ${who}`);
        await setPassword(t.db, user.id, password);
        await recordOperatorAction(t, 'users password', `user:${user.id}`);
        process.stdout.write(`Password of user ${user.id} set\n`);
      }),
    );
  });
}
