import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv } from '../../testkit/env.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type Finished = { code: number | null; stdout: string; stderr: string };

/** Runs `node <script> ...args` (the Node 22 running the tests) to completion. */
export function runScript(script: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env: childEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export type RunningService = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

/** Starts `node src/main.ts` and resolves once it logs that it is ready. */
export function startServiceProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<RunningService> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/main.ts'], { cwd: ROOT, env: childEnv(env) });
    let output = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`service not ready in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('job scheduler ready')) {
        clearTimeout(timer);
        resolve({ child, output: () => output, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before it was ready:\n${output}`));
    });
  });
}
