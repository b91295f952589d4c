import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Public sample data beside the checkout (../shared/data); CI always has it. */
export const SHARED_DATA = join(REPO_ROOT, '..', 'shared', 'data');
export const CLI = join(REPO_ROOT, 'bin', 'tessera.js');
