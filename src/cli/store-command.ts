import type { Command } from 'commander';
import type { TesseraConfig } from '../server/config.js';
import { createTessera, type Tessera } from '../server/tessera.js';

export interface StoreFlags {
  data?: string;
  databaseUrl?: string;
}

/** The options every command that opens the store takes. */
export function storeOptions(command: Command): Command {
  return command.option('--data <dir>', 'data directory (env TESSERA_DATA, default ./data)').option('--database-url <url>', 'PostgreSQL connection URL (env DATABASE_URL)');
}

/** Runs `fn` on the store the flags name, closing it (and flushing the audit log) afterwards. */
export async function withStore(config: TesseraConfig, fn: (t: Tessera) => Promise<void>): Promise<void> {
  const tessera = await createTessera(config, { auditThread: false });
  try {
    await fn(tessera);
  } finally {
    await tessera.close();
  }
}
