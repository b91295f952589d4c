import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI } from './paths.js';

const exec = promisify(execFile);

/** Runs `tessera ARGS` as a user would, and returns its exit code and output whether it fails or not. */
export async function tessera(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err: any) {
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
