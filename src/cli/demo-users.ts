import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tessera } from '../server/tessera.js';
import { setClearance } from '../consent/clearance.js';
import { ORGANIZATIONS } from '../synthetic/community.js';
import { addUser } from '../users/user-directory.js';

/**
 * The demo's portal users, one per role, so that `npm start` opens a portal one can sign in to. Their
 * passwords are random, written once to a file in the data directory (mode 0600), never to the logs.
 */
export async function ensureDemoUsers(tessera: Tessera): Promise<{ created: boolean; usersFile: string }> {
  const usersFile = join(tessera.config.dataDir, 'demo-users.json');
  const done = await tessera.db.query<{ value: string }>("SELECT value FROM setting WHERE key = 'demo.users'");
  if (done.length) return { created: false, usersFile };
  const organization = ORGANIZATIONS[0].id;
  // The demo's first person, as a source record (not a golden record of the patient index).
  const patients = await tessera.db.query<{ id: string }>(
    `SELECT id FROM resource WHERE type = 'Patient' AND deleted = 0 AND content LIKE '%"MRN100000"%' AND content NOT LIKE '%"code":"golden"%' LIMIT 1`,
  );
  const people: { name: string; email: string; role: string; patient?: string }[] = [
    { name: 'Demo Clinician', email: 'clinician@demo.tessera.example', role: 'clinician' },
    { name: 'Demo Steward', email: 'steward@demo.tessera.example', role: 'steward' },
    { name: 'Demo Interface Analyst', email: 'analyst@demo.tessera.example', role: 'interface-analyst' },
    { name: 'Demo Privacy Officer', email: 'privacy@demo.tessera.example', role: 'privacy-officer' },
  ];
  if (patients[0]) people.push({ name: 'Demo Patient', email: 'patient@demo.tessera.example', role: 'patient', patient: patients[0].id });
  const written: { email: string; role: string; password: string }[] = [];
  for (const p of people) {
    const password = randomBytes(12).toString('base64url');
    const user = await addUser(tessera.repo, { ...p, organization, password });
    // The message log holds anything about anyone: the analyst reads it cleared, as an operator would set up.
    if (p.role === 'interface-analyst') await setClearance(tessera.db, `user:${user.id}`, ['*']);
    written.push({ email: p.email, role: p.role, password });
  }
  writeFileSync(usersFile, JSON.stringify({ portal: '/', users: written }, null, 2), { mode: 0o600 });
  chmodSync(usersFile, 0o600);
  await tessera.db.run("INSERT INTO setting (key, value) VALUES ('demo.users', ?)", [new Date().toISOString()]);
  return { created: true, usersFile };
}
