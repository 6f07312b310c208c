import { cp, stat } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';

/**
 * Just enough of a Dockerfile reader for test/container.test.ts to reproduce the image's steps
 * without an engine. Anything it does not understand is an error, so a new instruction in the
 * Dockerfile cannot be silently left out of the test.
 */

export type Instruction = { keyword: string; args: string; line: number };

export type Dockerfile = {
  from: string;
  env: Record<string, string>;
  workdir: string;
  /** In file order, so COPY and RUN can be replayed in sequence. */
  steps: Array<{ kind: 'COPY'; sources: string[]; dest: string } | { kind: 'RUN'; command: string }>;
  user: string | undefined;
  expose: string[];
  volumes: string[];
  healthcheck: { options: Record<string, string>; cmd: string[] } | undefined;
  /** Exec form only (a JSON array); null when CMD is in shell form. */
  cmd: string[] | null;
};

/** Joins continuation lines, drops comments and blank lines. */
export function instructions(text: string): Instruction[] {
  const result: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trimEnd();
    if (!pending && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (pending && line.trimStart().startsWith('#')) return; // comments may sit inside a continuation
    if (!pending) startLine = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/s.exec(full) ?? [];
    result.push({ keyword: keyword.toUpperCase(), args: args.trim(), line: startLine });
  });
  if (pending) throw new Error('Dockerfile ends inside a continuation line');
  return result;
}

export function parseDockerfile(text: string): Dockerfile {
  const file: Dockerfile = { from: '', env: {}, workdir: '/', steps: [], user: undefined, expose: [], volumes: [], healthcheck: undefined, cmd: null };
  for (const { keyword, args, line } of instructions(text)) {
    switch (keyword) {
      case 'FROM':
        file.from = args;
        break;
      case 'ENV':
        for (const pair of args.match(/\S+=("[^"]*"|\S*)/g) ?? []) {
          const at = pair.indexOf('=');
          file.env[pair.slice(0, at)] = pair.slice(at + 1).replace(/^"(.*)"$/, '$1');
        }
        break;
      case 'WORKDIR':
        file.workdir = posix.resolve(file.workdir, args);
        break;
      case 'COPY': {
        if (args.startsWith('--')) throw new Error(`line ${line}: COPY options are not reproduced by this test: ${args}`);
        const parts = args.split(/\s+/);
        file.steps.push({ kind: 'COPY', sources: parts.slice(0, -1), dest: posix.resolve(file.workdir, parts.at(-1)!) + (parts.at(-1)!.endsWith('/') ? '/' : '') });
        break;
      }
      case 'RUN':
        file.steps.push({ kind: 'RUN', command: args });
        break;
      case 'USER':
        file.user = args;
        break;
      case 'EXPOSE':
        file.expose.push(...args.split(/\s+/));
        break;
      case 'VOLUME':
        file.volumes.push(...(args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/)));
        break;
      case 'HEALTHCHECK': {
        const [, flags, cmd] = /^((?:--\S+\s+)*)CMD\s+(\[.*\])$/s.exec(args) ?? [];
        if (flags === undefined || cmd === undefined) throw new Error(`line ${line}: HEALTHCHECK must be \`[--options] CMD [exec form]\`: ${args}`);
        const options = Object.fromEntries(flags.trim().split(/\s+/).filter(Boolean).map((o) => o.replace(/^--/, '').split('=') as [string, string]));
        file.healthcheck = { options, cmd: JSON.parse(cmd) };
        break;
      }
      case 'CMD':
        file.cmd = args.startsWith('[') ? JSON.parse(args) : null;
        break;
      default:
        throw new Error(`line ${line}: test/support/dockerfile.ts does not know how to reproduce ${keyword}`);
    }
  }
  return file;
}

/** Docker duration (`30s`, `1m30s`, `500ms`) in milliseconds. */
export function durationMs(value: string): number {
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(amount) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return total;
}

/** A .dockerignore as a predicate over paths relative to the build context (simple globs only). */
export function dockerignore(text: string): (path: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((p) => {
      if (p.startsWith('!')) throw new Error(`.dockerignore exceptions (${p}) are not reproduced by this test`);
      const source = p.replace(/^\/+|\/+$/g, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '.*');
      return new RegExp(`^${source}$`);
    });
  // A pattern excludes the path itself and everything below it.
  return (path) => {
    const segments = path.split('/');
    return segments.some((_, i) => patterns.some((re) => re.test(segments.slice(0, i + 1).join('/'))));
  };
}

/**
 * COPY from `context` into `root` (the image's filesystem, rebased): a directory source copies its
 * contents, a file source goes into a destination ending in `/` under its own name.
 */
export async function copyStep(context: string, root: string, sources: string[], dest: string, ignored: (path: string) => boolean): Promise<void> {
  for (const source of sources) {
    const from = join(context, source);
    const rel = relative(context, from);
    if (rel.startsWith('..') || ignored(rel)) throw new Error(`COPY ${source}: not in the build context (or excluded by .dockerignore)`);
    const isDir = (await stat(from)).isDirectory();
    const to = join(root, isDir || !dest.endsWith('/') ? dest : posix.join(dest, posix.basename(source)));
    await cp(from, to, {
      recursive: true,
      filter: (path) => {
        const r = relative(context, path);
        return r === '' || !ignored(r);
      },
    });
  }
}
