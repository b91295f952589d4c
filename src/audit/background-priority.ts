import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * The nice value of the audit writer thread. Its commits are background work: a request's event is
 * durable once journalled (audit-journal.ts), so a commit that waits costs nothing but how soon another
 * process's AuditEvent search sees it. On a machine whose cores the server, the writer and its callers
 * share, the writer's bursts (every 250 ms, all events since) otherwise delay the requests running beside
 * them. At nice 19 the Linux scheduler gives the thread about 1.5 % of a contended core's time (nice 10
 * gave it a tenth, and sequential reads still waited behind its bursts), and all of an idle one.
 */
export const AUDIT_WRITER_NICE = 19;

/**
 * Lowers the calling thread's scheduling priority. Linux keeps nice per thread and names the calling
 * thread in /proc/thread-self; elsewhere (or if refused) the thread keeps its priority. Returns whether
 * it was lowered.
 */
export function lowerThreadPriority(nice: number): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
