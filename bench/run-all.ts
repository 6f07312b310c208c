/**
 * Runs every benchmark, one after another (they would disturb each other side by side), and writes
 * their markdown sections to bench/results/<mode>.md (or <mode>-b1-b3.md for some) with the commit
 * and the command.
 *
 *   npm run bench                 full mode: the figures quoted in BENCHMARKS.md (~50 min)
 *   npm run bench -- --quick      CI-sized runs that check every script still works (~6.5 min)
 *   npm run bench -- b1 b3        some of them only (the file then holds only those)
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { machineLine, QUICK, ROOT } from './lib.ts';

/** In the order they run: start-up first, on a machine nothing else has warmed. */
const FIGURES: Record<string, string[]> = {
  b5: ['bench/startup.ts'],
  b1: ['bench/throughput.ts'], // with B6 for runs (1–3 instances)
  b2: ['bench/api-latency.ts'],
  b3: ['bench/cron-latency.ts'],
  b4: ['bench/pipeline-throughput.ts'],
  b6: ['bench/pipeline-throughput.ts', '--instances'], // B6 for the AI pipeline
  b7: ['bench/manual-run-latency.ts'],
  retention: ['bench/retention.ts'], // job_logs retention: /status p99 while 1 M old rows are deleted
  connections: ['bench/connections.ts'], // PostgreSQL connections per instance, idle and busy, per ROLE
  pgbouncer: ['bench/pgbouncer.ts'], // run pickup and cron lateness behind PgBouncer (skips without it)
  metrics: ['bench/metrics-scrape.ts'], // GET /metrics scrape cost with 1 M job_logs rows and a 100 k backlog
  b8: ['bench/data-at-scale.ts'], // claims and read routes at 10 k vs 1 M items / 100 k blueprints / 5 M drops
};

const asked = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const unknown = asked.filter((name) => !(name in FIGURES));
if (unknown.length) {
  console.error(`unknown figure(s): ${unknown.join(', ')}; known: ${Object.keys(FIGURES).join(', ')}`);
  process.exit(2);
}
const chosen = Object.entries(FIGURES).filter(([name]) => asked.length === 0 || asked.includes(name));
const mode = QUICK ? 'quick' : 'full';

const sections: string[] = [];
const failures: string[] = [];
for (const [name, args] of chosen) {
  const t0 = performance.now();
  const script = args.join(' ');
  process.stderr.write(`\n=== ${name}: ${script} (${mode}) ===\n`);
  const { code, stdout } = await runScript(args);
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  if (code !== 0) failures.push(`${name} (${script}) exited ${code}`);
  sections.push(`${stdout.trim() || `### ${name}: no output`}\n\n_\`npm exec -- node ${script}${QUICK ? ' --quick' : ''}\` · exit ${code} · ${seconds} s_`);
}

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() ? ' (with uncommitted changes)' : '';
const header = `# Benchmark results (${mode} mode)\n\n${machineLine()} · commit ${commit}${dirty} · \`npm run bench${QUICK ? ' -- --quick' : ''}${asked.length ? ` ${asked.join(' ')}` : ''}\`\n`;
// A subset gets a file of its own, so it never overwrites a whole run's results.
const file = join(ROOT, 'bench', 'results', `${mode}${asked.length ? `-${asked.join('-')}` : ''}.md`);
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(file, `${header}\n${sections.join('\n\n')}\n`);
process.stderr.write(`\nwrote ${file}\n`);
if (failures.length) {
  process.stderr.write(`failed: ${failures.join('; ')}\n`);
  process.exit(1);
}

function runScript(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...args, ...(QUICK ? ['--quick'] : [])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      process.stdout.write(chunk);
    });
    // Ctrl-C reaches the child too (same process group); wait for its cleanup.
    process.on('SIGINT', () => {});
    child.on('exit', (code) => resolve({ code, stdout }));
  });
}
