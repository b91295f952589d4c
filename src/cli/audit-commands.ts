import type { Command } from 'commander';
import { storeOptions, type StoreFlags } from './store-command.js';
import { archiveAuditEvents } from '../audit/audit-archive.js';
import { auditJournalDir, openAuditDatabase } from '../audit/audit-store.js';
import { leftoverJournals } from '../audit/audit-journal.js';
import { verifyAuditLog } from '../audit/audit-verify.js';
import type { TesseraConfig } from '../server/config.js';


/** `tessera audit verify|archive` (docs/audit.md). */
export function registerAuditCommands(program: Command, config: (flags: StoreFlags) => TesseraConfig): void {
  const audit = program.command('audit').description('the tamper-evident audit log (docs/audit.md)');
  storeOptions(
    audit
      .command('verify')
      .description('check the hash chain of the audit log (and of its archive files with --archives); exits 1 at the first edited, removed, reordered or inserted event')
      .option('--archives <dir>', 'archive directory written by `tessera audit archive`: verified from its first event')
      .option('--head <seq:hash>', 'a head printed by an earlier verify and kept elsewhere: the log must still hold it (detects cut-off newest events)'),
  ).action(async (flags: StoreFlags & { archives?: string; head?: string }) => {
    const m = flags.head === undefined ? undefined : /^(\d+):([0-9a-f]{64})$/.exec(flags.head);
    if (flags.head !== undefined && !m) program.error('tessera audit verify: --head must be SEQ:HASH as printed by verify');
    const db = await openAuditDatabase(config(flags));
    try {
      const report = await verifyAuditLog(db, flags.archives, m ? { seq: Number(m[1]), hash: m[2] } : undefined);
      if (report.problem) {
        process.stdout.write(`Audit log BROKEN at event ${report.problem.seq} (${report.problem.kind}): ${report.problem.detail}\n`);
        process.exitCode = 1;
      } else {
        process.stdout.write(`Audit log intact: ${report.current} events in the log${flags.archives ? `, ${report.archived} archived` : ''}; head ${report.head.seq}:${report.head.hash} (keep it elsewhere: verify --head SEQ:HASH then detects newer events cut off)\n`);
      }
      const leftovers = leftoverJournals(auditJournalDir(config(flags).dataDir));
      if (leftovers.length) {
        process.stdout.write(`${leftovers.length} audit journal file(s) of stopped processes hold events not yet in the log; the next \`tessera serve\` on this data directory appends them\n`);
      }
    } finally {
      await db.close();
    }
  });
  storeOptions(
    audit
      .command('archive')
      .description('move the events recorded before a date to NDJSON files, keeping the chain verifiable')
      .requiredOption('--before <date>', 'ISO date or date-time: events recorded before it are archived')
      .requiredOption('--to <dir>', 'directory for the archive files'),
  ).action(async (flags: StoreFlags & { before: string; to: string }) => {
    const before = Date.parse(flags.before);
    if (Number.isNaN(before)) program.error(`tessera audit archive: --before must be an ISO date, not "${flags.before}"`);
    const db = await openAuditDatabase(config(flags));
    try {
      const result = await archiveAuditEvents(db, before, flags.to);
      process.stdout.write(`Archived ${result.events} events to ${result.files.length} file(s) in ${flags.to}\n`);
    } finally {
      await db.close();
    }
  });
}
