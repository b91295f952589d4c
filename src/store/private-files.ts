import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';

/**
 * The data directory holds PHI (the SQLite database) and the token-signing key: only the server's own
 * user may read it. Modes are tightened on every start, so a directory created earlier with looser
 * modes (or copied in with them) is closed up too.
 */
export const PRIVATE_DIRECTORY_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

export function ensurePrivateDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  chmodSync(dir, PRIVATE_DIRECTORY_MODE);
}

/** Makes `file` readable by its owner only, creating it empty if it does not exist yet. */
export function ensurePrivateFile(file: string): void {
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  chmodSync(file, PRIVATE_FILE_MODE);
}

/** Tightens the mode of those of `files` that exist. */
export function restrictExistingFiles(files: string[]): void {
  for (const file of files) {
    if (existsSync(file)) chmodSync(file, PRIVATE_FILE_MODE);
  }
}
