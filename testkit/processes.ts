import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv, type ChildEnvOptions } from './env.ts';
import { sleep } from './poll.ts';

/**
 * Child processes the tests and the benchmarks start: `node [nodeArgs] <script> [args]` (or another
 * command, such as `npm start`) from the repository root, with a scrubbed environment (env.ts). Its
 * output is kept (the end of it) and handed over line by line; waiting for a line or for /healthz
 * fails with that output when the process exits first or the time runs out; stopping it cannot hang.
 */

/** The repository root: scripts are named from it (`src/main.ts`). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What the service logs once it is up (src/service.ts). */
export const SERVICE_READY = 'job scheduler ready';

/** How long to wait, after the process exits, for output still in the pipes (a grandchild may hold them open). */
const OUTPUT_GRACE_MS = 250;

export type SpawnOptions = ChildEnvOptions & {
  /** Variables on top of the scrubbed environment. */
  env?: Record<string, string>;
  /** Called with every non-empty line it prints, stdout and stderr alike. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How many characters of output `output()` keeps, the last ones. */
  tailChars?: number;
  /** Runs it in a process group of its own (npm → sh → node), so stop() and kill() reach all of it. */
  group?: boolean;
  /** What error messages call it; the command line by default. */
  name?: string;
};

export type Stopped = { code: number | null; signal: NodeJS.Signals | null; forced: boolean };

export type RunningProcess = {
  child: ChildProcess;
  name: string;
  /** The end of what it printed, stdout and stderr interleaved. */
  output(): string;
  /** Its exit code (null when a signal ended it), once what it printed has been read too. */
  exited: Promise<number | null>;
  running(): boolean;
  /** Resolves with the first line (printed so far or from now on) that contains `pattern` or matches it. */
  waitForLine(pattern: string | RegExp, timeoutMs: number): Promise<string>;
  /** Resolves once `GET <baseUrl>/healthz` answers 200, polled every `intervalMs`. */
  waitForHealth(baseUrl: string, timeoutMs: number, intervalMs?: number): Promise<void>;
  /** Sends `signal` (to its whole group with `group`) if it is still running. */
  sendSignal(signal: NodeJS.Signals): void;
  /** `signal` (SIGTERM), then SIGKILL if it is still running after `graceMs`. */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<Stopped>;
  /** SIGKILL if it is still running; resolves once it is gone. */
  kill(): Promise<void>;
};

/** A service started by startServiceProcess. */
export type RunningService = RunningProcess;

export type Finished = { code: number | null; stdout: string; stderr: string };

/** Spawns `command args` from the repository root; see RunningProcess. */
export function spawnProcess(command: string, args: string[], options: SpawnOptions = {}): RunningProcess {
  const { env = {}, onLine, tailChars = 100_000, group = false, stripLocalBin } = options;
  const name = options.name ?? [command === process.execPath ? 'node' : command, ...args].join(' ').slice(0, 120);
  const child = spawn(command, args, { cwd: ROOT, env: childEnv(env, { stripLocalBin }), stdio: ['ignore', 'pipe', 'pipe'], detached: group });

  let tail = '';
  let failure: Error | undefined;
  /** Set once it has exited and what it printed has been read: no line comes any more. */
  let drained = false;
  type Waiter = { matches(line: string): boolean; found(line: string): void; fail(): void };
  const waiters = new Set<Waiter>();
  const running = () => child.exitCode === null && child.signalCode === null && !failure;
  const ended = () => (failure ? `failed to start (${failure.message})` : `exited (${child.exitCode ?? child.signalCode})`);

  const partial = { stdout: '', stderr: '' };
  const take = (line: string, stream: 'stdout' | 'stderr') => {
    if (!line) return;
    onLine?.(line, stream);
    for (const waiter of waiters) if (waiter.matches(line)) waiter.found(line);
  };
  for (const stream of ['stdout', 'stderr'] as const) {
    const pipe = child[stream]!;
    pipe.setEncoding('utf8');
    pipe.on('data', (text: string) => {
      tail = (tail + text).slice(-tailChars);
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = lines.pop()!;
      for (const line of lines) take(line, stream);
    });
    pipe.on('end', () => take(partial[stream], stream));
  }

  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const exited = new Promise<number | null>((resolve) => {
    let finishing = false;
    const finish = async () => {
      if (finishing) return;
      finishing = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((done) => (timer = setTimeout(done, OUTPUT_GRACE_MS)))]);
      clearTimeout(timer);
      drained = true;
      for (const waiter of waiters) waiter.fail();
      resolve(child.exitCode);
    };
    child.once('exit', () => void finish());
    child.once('error', (error) => {
      failure = error;
      void finish();
    });
  });

  const sendSignal = (sig: NodeJS.Signals) => {
    if (!running() || child.pid === undefined) return;
    if (!group) child.kill(sig);
    else {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is gone already
      }
    }
  };

  return {
    child,
    name,
    output: () => tail,
    exited,
    running,
    waitForLine(pattern, timeoutMs) {
      const matches = (line: string) => (typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line));
      const exitedFirst = () => new Error(`${name} ${ended()} before it printed ${String(pattern)}:\n${tail}`);
      const earlier = tail.split('\n').find(matches);
      if (earlier !== undefined) return Promise.resolve(earlier);
      if (drained) return Promise.reject(exitedFirst());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => settle(() => reject(new Error(`${name} did not print ${String(pattern)} within ${timeoutMs} ms:\n${tail}`))), timeoutMs);
        const settle = (then: () => void) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          then();
        };
        const waiter: Waiter = {
          matches,
          found: (line) => settle(() => resolve(line)),
          fail: () => settle(() => reject(exitedFirst())),
        };
        waiters.add(waiter);
      });
    },
    async waitForHealth(baseUrl, timeoutMs, intervalMs = 200) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!running()) {
          await exited;
          throw new Error(`${name} ${ended()} before ${baseUrl}/healthz answered 200:\n${tail}`);
        }
        const status = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
          async (response) => (await response.arrayBuffer(), response.status),
          () => 0,
        );
        if (status === 200) return;
        if (Date.now() > deadline) throw new Error(`${name}: ${baseUrl}/healthz did not answer 200 within ${timeoutMs} ms:\n${tail}`);
        await sleep(intervalMs);
      }
    },
    sendSignal,
    async stop({ signal: sig = 'SIGTERM', graceMs = 10_000 } = {}) {
      let forced = false;
      if (running()) {
        sendSignal(sig);
        let timer: NodeJS.Timeout | undefined;
        const inTime = await Promise.race([exited.then(() => true), new Promise<boolean>((done) => (timer = setTimeout(() => done(false), graceMs)))]);
        clearTimeout(timer);
        if (!inTime) {
          forced = true;
          sendSignal('SIGKILL');
        }
      }
      const code = await exited;
      return { code, signal: child.signalCode, forced };
    },
    async kill() {
      sendSignal('SIGKILL');
      await exited;
    },
  };
}

/** Spawns `node [nodeArgs] <script> [args]` (the Node running us) from the repository root. */
export function spawnNode(script: string, options: SpawnOptions & { args?: string[]; nodeArgs?: string[] } = {}): RunningProcess {
  const { args = [], nodeArgs = [], ...rest } = options;
  return spawnProcess(process.execPath, [...nodeArgs, script, ...args], { name: `node ${[script, ...args].join(' ')}`, ...rest });
}

/** Runs `node <script> ...args` to completion; SIGKILLed and an error after `timeoutMs`. */
export async function runScript(script: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Finished> {
  const proc = spawnNode(script, { args, env });
  let stdout = '';
  let stderr = '';
  proc.child.stdout!.on('data', (text: string) => (stdout += text));
  proc.child.stderr!.on('data', (text: string) => (stderr += text));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void proc.kill();
      reject(new Error(`${script} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
  });
  try {
    return { code: await Promise.race([proc.exited, timedOut]), stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `node src/main.ts` and resolves once it logs that it is ready (SIGKILLed if it does not). */
export async function startServiceProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<RunningService> {
  const service = spawnNode('src/main.ts', { env });
  try {
    await service.waitForLine(SERVICE_READY, timeoutMs);
  } catch (error) {
    await service.kill();
    throw error;
  }
  return service;
}
