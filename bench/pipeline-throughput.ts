/**
 * B4 / B6: AI pipeline throughput, through the real service process, against a fake OpenAI server
 * that answers every call after a fixed 200 ms.
 *
 * B4 (default): for LLM_CONCURRENCY 4 and 16, each run on a fresh database:
 *   - the service is spawned as `node src/main.ts` (what `npm start` runs) with DATABASE_URL on the
 *     benchmark's PostgreSQL, LOG_LEVEL=warn, the fake's URL as OPENAI_BASE_URL, and
 *     EXTRACT_BATCH_SIZE / DROPS_BATCH_SIZE raised so one run takes every item;
 *   - 200 harvest items are inserted with SQL (realistic ~3 KB notices); their blueprints get
 *     2, 8, 5, 3, 7 topics in turn (1,000 topics for 200 items);
 *   - `POST /api/jobs/run/extract-blueprints`, then polls job_logs (every 20 ms) until the run's row is
 *     closed; then the same for `generate-drops` over every topic of those blueprints (each drops
 *     answer is 4 lessons of ~100 words, as the prompt asks).
 *   Throughput = items (topics) / (ended_at − started_at) of the job_logs row, and / (POST → row seen
 *   closed). Compared with the ideal `concurrency / latency` (C / 0.2 s) as a ratio.
 *   Also: the fake counts LLM calls in flight (max and time-weighted mean over the run) and the
 *   "turnaround" (an answer leaving → the request that took its slot arriving: the service's own
 *   time per item); the service's CPU time per item (from /proc); the 1-minute load average (the
 *   machine is shared). The peak RSS of the service process over each run is sampled (B5 quotes it).
 *
 * B6 (`--instances`): the same workload with 1, 2 and 3 service processes (ROLE=all) on one
 *   database, LLM_CONCURRENCY 16 (`--concurrency=4` to change it); one POST per job to instance 1.
 *   Each instance has its own API key, so the fake tells which instance made the calls.
 *
 * Full: 3 runs per variant (median); quick: 1 run, and generate-drops over the first 80 blueprints
 * only (~400 topics).
 *
 *   cd /work/main && npm exec -- node bench/pipeline-throughput.ts [--quick]               # B4
 *   cd /work/main && npm exec -- node bench/pipeline-throughput.ts --instances [--quick]   # B6
 *
 * Options: `--concurrency=4,16` overrides the LLM_CONCURRENCY values.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply, type FakeRequest } from '../testkit/fake-openai.ts';
import { sleep } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { spawnNode, type RunningProcess } from '../testkit/processes.ts';
import {
  fmt,
  killOnCleanup,
  machineLine,
  main,
  markdownTable,
  max,
  median,
  mib,
  min,
  note,
  onCleanup,
  percentile,
  QUICK,
  ratio,
  sampleRss,
  sized,
  startPostgres,
  stopGracefully,
  type BenchPostgres,
} from './lib.ts';

const LATENCY_MS = 200;
const ITEMS = 200;
/** Topics per blueprint, in turn: mean 5, so 200 items give 1,000 topics. */
const TOPIC_PATTERN = [2, 8, 5, 3, 7];
const RUNS = sized(1, 3);
/** generate-drops takes this many blueprints per run (all 200 in full mode). */
const DROPS_BLUEPRINTS = sized(80, ITEMS);
const POLL_MS = 20;
const JOB_TIMEOUT_MS = 10 * 60_000;

const INSTANCES_MODE = process.argv.includes('--instances');
const concurrencyArg = process.argv.find((a) => a.startsWith('--concurrency='))?.split('=')[1];
const CONCURRENCIES = concurrencyArg ? concurrencyArg.split(',').map(Number) : INSTANCES_MODE ? [16] : [4, 16];
const INSTANCE_COUNTS = INSTANCES_MODE ? [1, 2, 3] : [1];

const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// The fake LLM: answers after LATENCY_MS, counts what is in flight.

type FlightEvent = { t: number; delta: 1 | -1 };

class FlightMeter {
  events: FlightEvent[] = [];
  inFlight = 0;
  /** Calls per API key (one key per instance). */
  byKey = new Map<string, number>();
  enter(key: string) {
    this.inFlight += 1;
    this.events.push({ t: now(), delta: 1 });
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
  }
  leave() {
    this.inFlight -= 1;
    this.events.push({ t: now(), delta: -1 });
  }
  reset() {
    this.events = [];
    this.byKey = new Map();
  }
  /** Time-weighted mean and max of calls in flight over [from, to] (epoch ms). */
  window(from: number, to: number): { mean: number; max: number; calls: number } {
    let level = 0;
    let area = 0;
    let peak = 0;
    let calls = 0;
    let last = from;
    for (const { t, delta } of this.events) {
      if (t > to) break;
      if (t >= from) {
        area += level * (t - last);
        last = t;
        if (delta === 1) calls += 1;
      }
      level += delta;
      if (t >= from) peak = Math.max(peak, level);
    }
    area += level * (to - Math.max(last, from));
    return { mean: to > from ? area / (to - from) : Number.NaN, max: peak, calls };
  }
  /**
   * Turnaround in ms: from an answer leaving the fake to the request that took its slot arriving
   * (the j-th request, j ≥ concurrency, pairs with the (j − concurrency)-th answer). It is what the
   * service spends per item outside the LLM call: parsing, validating, writing to the database,
   * building and sending the next request (and waiting for a CPU).
   */
  turnarounds(concurrency: number): number[] {
    const arrivals = this.events.filter((e) => e.delta === 1).map((e) => e.t);
    const leaves = this.events.filter((e) => e.delta === -1).map((e) => e.t);
    const out: number[] = [];
    for (let j = concurrency; j < arrivals.length; j++) {
      const leave = leaves[j - concurrency];
      if (leave !== undefined) out.push(arrivals[j]! - leave);
    }
    return out;
  }
}

const NOTICE_BODY = [
  'EDITAL DE ABERTURA DE INSCRIÇÕES. O Presidente do Tribunal, no uso de suas atribuições legais, torna pública a realização de concurso público',
  'para provimento de cargos do quadro de pessoal, mediante as condições estabelecidas neste Edital. 1. DAS DISPOSIÇÕES PRELIMINARES.',
  '1.1 O concurso público será regido por este Edital e executado pela banca organizadora. 1.2 A seleção compreenderá prova objetiva e discursiva.',
  'CONTEÚDO PROGRAMÁTICO. LÍNGUA PORTUGUESA: 1 Compreensão e interpretação de textos. 2 Tipologia textual. 3 Ortografia oficial. 4 Acentuação gráfica.',
  '5 Emprego das classes de palavras. 6 Emprego do sinal indicativo de crase. 7 Sintaxe da oração e do período. 8 Pontuação. 9 Concordância nominal e verbal.',
  'DIREITO CONSTITUCIONAL: 1 Constituição: conceito, classificações, princípios fundamentais. 2 Direitos e garantias fundamentais. 3 Organização do Estado.',
  'DIREITO ADMINISTRATIVO: 1 Estado, governo e administração pública. 2 Ato administrativo. 3 Agentes públicos. 4 Poderes administrativos. 5 Licitações.',
  'NOÇÕES DE INFORMÁTICA: 1 Conceitos de Internet e intranet. 2 Ferramentas de escritório. 3 Segurança da informação. 4 Noções de sistema operacional.',
].join(' ');

/** ~3 KB of notice, with a marker so the fake knows which item a request is about. */
const noticeOf = (i: number) => `${NOTICE_BODY} ${NOTICE_BODY.slice(0, 1500)} [[item:${i}]]`;

const DISCIPLINES = ['Língua Portuguesa', 'Direito Constitucional', 'Direito Administrativo', 'Noções de Informática'];

function blueprintAnswer(i: number) {
  const count = TOPIC_PATTERN[(i - 1) % TOPIC_PATTERN.length]!;
  return {
    exam_name: `Concurso Público do Tribunal Regional ${i} — Analista Judiciário`,
    organization: `Tribunal Regional ${i}`,
    topics: Array.from({ length: count }, (_, k) => ({
      code: `T${i}-${k + 1}`,
      name: `Tópico ${k + 1} do edital ${i}: emprego do sinal indicativo de crase e regência`,
      discipline: DISCIPLINES[k % DISCIPLINES.length]!,
    })),
  };
}

const LESSON = Array.from({ length: 100 }, (_, k) => ['crase', 'regência', 'exemplo', 'banca', 'preposição', 'artigo', 'feminino'][k % 7]).join(' ');
function dropsAnswer(topic: string) {
  return { drops: Array.from({ length: 4 }, (_, k) => ({ title: `Drop ${k + 1}: ${topic.slice(0, 60)}`, content: `${LESSON} (${k + 1})` })) };
}

const userMessage = (req: FakeRequest) => req.messages.find((m) => m.role === 'user')?.content ?? '';

function responder(meter: FlightMeter) {
  return async (req: FakeRequest): Promise<FakeReply> => {
    const auth = req.headers.authorization;
    meter.enter(typeof auth === 'string' ? auth.replace(/^Bearer /, '') : '?');
    try {
      await sleep(LATENCY_MS);
      if (req.responseFormatName === 'exam_blueprint') {
        const i = Number(/\[\[item:(\d+)\]\]/.exec(userMessage(req))?.[1]);
        if (!Number.isInteger(i)) return { status: 400, body: { error: { message: 'no item marker', type: 'invalid_request_error', code: null } } };
        return { content: blueprintAnswer(i) };
      }
      return { content: dropsAnswer(/^Topic: (.*)$/m.exec(userMessage(req))?.[1] ?? 'tópico') };
    } finally {
      meter.leave();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// The service process

type ServiceProcess = { proc: RunningProcess; pid: number; url: string; key: string };

async function spawnService(env: Record<string, string>, key: string, timeoutMs = 60_000): Promise<ServiceProcess> {
  const port = await freePort();
  const proc = killOnCleanup(
    spawnNode('src/main.ts', {
      env: { ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', LOG_FORMAT: 'json', OPENAI_API_KEY: key },
      tailChars: 4_000,
      // LOG_LEVEL=warn: whatever the service prints is worth seeing.
      onLine: (line) => note(`service ${proc.child.pid}: ${line.slice(0, 300)}`),
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  await proc.waitForHealth(url, timeoutMs, 20);
  return { proc, pid: proc.child.pid!, url, key };
}

/** user + system CPU seconds of a process, from /proc/<pid>/stat (clock ticks of 10 ms). */
async function cpuSecondsOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// ---------------------------------------------------------------------------------------------
// One run

type PhaseResult = {
  job: string;
  items: number;
  status: string;
  processed: number;
  failed: number;
  runS: number;
  e2eS: number;
  pickupS: number;
  inFlightMean: number;
  inFlightMax: number;
  calls: number;
  byInstance: number[];
  /** CPU seconds of the service processes (all instances), POST → closed. */
  serviceCpuS: number;
  turnaroundMedianMs: number;
  turnaroundP90Ms: number;
  /** 1-minute load average when the phase started: how busy the shared machine was. */
  loadAvg: number;
};

type RunResult = { extract: PhaseResult; drops: PhaseResult; peakRss: number[] };

async function runPhase(
  pool: pg.Pool,
  services: ServiceProcess[],
  meter: FlightMeter,
  job: string,
  items: number,
  concurrency: number,
): Promise<PhaseResult> {
  meter.reset();
  const cpu0 = await Promise.all(services.map((s) => cpuSecondsOf(s.pid)));
  const loadAvg = loadavg()[0]!;
  const tPost = now();
  const res = await fetch(`${services[0]!.url}/api/jobs/run/${job}`, { method: 'POST' });
  const body = (await res.json()) as { jobId?: string };
  if (res.status !== 202 || !body.jobId) throw new Error(`POST /api/jobs/run/${job} answered ${res.status}: ${JSON.stringify(body)}`);
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    const { rows } = await pool.query(
      `select status, started_at, ended_at, items_processed, items_failed, error_message from job_logs where metadata->>'job_id' = $1 and status <> 'STARTED'`,
      [body.jobId],
    );
    const row = rows[0];
    if (row) {
      const tDone = now();
      const cpu1 = await Promise.all(services.map((s) => cpuSecondsOf(s.pid)));
      const started = (row.started_at as Date).getTime();
      const ended = (row.ended_at as Date).getTime();
      const flight = meter.window(started, ended);
      const turn = meter.turnarounds(concurrency);
      if (row.status !== 'COMPLETED' || row.items_processed !== items || row.items_failed !== 0) {
        note(`${job}: ${row.status}, ${row.items_processed} processed, ${row.items_failed} failed (expected ${items}) ${row.error_message ?? ''}`);
      }
      return {
        job,
        items,
        status: row.status,
        processed: row.items_processed,
        failed: row.items_failed,
        runS: (ended - started) / 1000,
        e2eS: (tDone - tPost) / 1000,
        pickupS: (started - tPost) / 1000,
        inFlightMean: flight.mean,
        inFlightMax: flight.max,
        calls: flight.calls,
        byInstance: services.map((s) => meter.byKey.get(s.key) ?? 0),
        serviceCpuS: cpu1.reduce((sum, c, k) => sum + c - cpu0[k]!, 0),
        turnaroundMedianMs: percentile(turn, 50),
        turnaroundP90Ms: percentile(turn, 90),
        loadAvg,
      };
    }
    if (Date.now() > deadline) throw new Error(`${job} run ${body.jobId} not closed within ${JOB_TIMEOUT_MS / 1000} s`);
    await sleep(POLL_MS);
  }
}

async function oneRun(postgres: BenchPostgres, fake: FakeOpenAI, meter: FlightMeter, concurrency: number, instances: number, label: string): Promise<RunResult> {
  const url = await postgres.createDatabase(label);
  const env = {
    DATABASE_URL: url,
    OPENAI_BASE_URL: fake.url,
    LLM_CONCURRENCY: String(concurrency),
    EXTRACT_BATCH_SIZE: String(ITEMS),
    DROPS_BATCH_SIZE: String(DROPS_BLUEPRINTS),
  };
  const services: ServiceProcess[] = [];
  // One after the other: the first applies the migrations.
  for (let k = 1; k <= instances; k++) services.push(await spawnService(env, `sk-bench-instance-${k}`));
  const samplers = services.map((s) => sampleRss(s.pid, 100));
  const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'bench' });
  onCleanup(() => pool.end().catch(() => {}));
  try {
    await pool.query(`insert into harvest_items (title, content) select 'Edital ' || i, c from unnest($1::text[]) with ordinality as t(c, i)`, [
      Array.from({ length: ITEMS }, (_, k) => noticeOf(k + 1)),
    ]);
    // Let the instances settle (startup work, first cron/maintenance passes) before timing.
    await sleep(1_000);
    const extract = await runPhase(pool, services, meter, 'extract-blueprints', ITEMS, concurrency);
    const { rows } = await pool.query(
      `select coalesce(sum(jsonb_array_length(topics)), 0)::int as n from (select topics from exam_blueprints order by id limit $1) b`,
      [DROPS_BLUEPRINTS],
    );
    const topics = rows[0].n as number;
    const drops = await runPhase(pool, services, meter, 'generate-drops', topics, concurrency);
    const peakRss = (await Promise.all(samplers.map((s) => s.stop()))).map((r) => r.peak);
    return { extract, drops, peakRss };
  } finally {
    await Promise.all(samplers.map((s) => s.stop()));
    const codes = await Promise.all(services.map((s) => stopGracefully(s.proc, 40_000)));
    if (codes.some((c) => c !== 0)) note(`service exit codes: ${codes.join(', ')}`);
    await pool.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------

await main(async () => {
  const postgres = await startPostgres('pipeline');
  const fake = await startFakeOpenAI();
  onCleanup(() => fake.close());
  const meter = new FlightMeter();
  fake.respond(responder(meter));

  type Variant = { concurrency: number; instances: number; runs: RunResult[] };
  const variants: Variant[] = [];
  for (const concurrency of CONCURRENCIES) {
    for (const instances of INSTANCE_COUNTS) variants.push({ concurrency, instances, runs: [] });
  }
  // Runs interleaved across variants, so a noisy minute does not land on one variant only.
  for (let r = 0; r < RUNS; r++) {
    for (const v of variants) {
      note(`run ${r + 1}/${RUNS}: LLM_CONCURRENCY ${v.concurrency}, ${v.instances} instance(s)`);
      const result = await oneRun(postgres, fake, meter, v.concurrency, v.instances, `bench_pipe_c${v.concurrency}_n${v.instances}_r${r}`);
      for (const p of [result.extract, result.drops]) {
        note(
          `  ${p.job}: ${p.processed}/${p.items} in ${fmt(p.runS, 2)} s (${fmt(p.items / p.runS)} /s, ideal ${v.concurrency / (LATENCY_MS / 1000)}), ` +
            `in flight mean ${fmt(p.inFlightMean, 2)} max ${p.inFlightMax}, calls by instance ${p.byInstance.join('/')}`,
        );
      }
      v.runs.push(result);
    }
  }

  const ideal = (c: number) => c / (LATENCY_MS / 1000);
  const phases = (v: Variant, job: 'extract' | 'drops') => v.runs.map((r) => r[job]);
  const range = (xs: number[], digits = 2) => (xs.length > 1 ? `${fmt(median(xs), digits)} (${fmt(min(xs), digits)}–${fmt(max(xs), digits)})` : fmt(xs[0]!, digits));
  const med = (ps: PhaseResult[], f: (p: PhaseResult) => number, digits = 1) => fmt(median(ps.map(f)), digits);
  const okText = (ps: PhaseResult[]) =>
    ps.every((p) => p.status === 'COMPLETED' && p.processed === p.items && p.failed === 0) ? 'yes' : ps.map((p) => `${p.status} ${p.processed}/${p.items}, ${p.failed} failed`).join('; ');
  /** Columns shared by both tables: the diagnostics. */
  const diagnostics = (ps: PhaseResult[]) => [
    `${med(ps, (p) => p.inFlightMean, 2)} / ${max(ps.map((p) => p.inFlightMax))}`,
    `${med(ps, (p) => p.turnaroundMedianMs, 0)} / ${med(ps, (p) => p.turnaroundP90Ms, 0)}`,
    `${med(ps, (p) => (p.serviceCpuS * 1000) / p.items)} / ${med(ps, (p) => (100 * p.serviceCpuS) / p.e2eS, 0)} %`,
    med(ps, (p) => p.loadAvg),
  ];
  const diagnosticHeaders = [
    'LLM calls in flight, mean / max',
    'turnaround ms, median / p90',
    'service CPU ms per item / % of a core',
    'load avg (1 min) at start',
  ];
  const allPhases = variants.flatMap((v) => [...phases(v, 'extract'), ...phases(v, 'drops')]);
  const footnotes = [
    `POST → job_logs started_at: median ${med(allPhases, (p) => p.pickupS * 1000, 0)} ms; the "POST → closed" rate also counts it and the ≤ ${POLL_MS} ms poll.`,
    '"turnaround" = from an LLM answer leaving the fake to the request that took its slot arriving: what the service spends per item outside the call ' +
      `(parse, validate, database write, next request, waiting for a CPU). With C slots busy all the time, ratio ≈ ${LATENCY_MS} / (${LATENCY_MS} + turnaround).`,
  ];

  const facts: string[] = [];
  if (!INSTANCES_MODE) {
    console.log('### B4. AI pipeline throughput vs the ideal `concurrency / latency`\n');
    console.log(
      `${machineLine()} · fake OpenAI latency ${LATENCY_MS} ms per call · ${ITEMS} harvest items (topics ${TOPIC_PATTERN.join(', ')} in turn) · ` +
        `EXTRACT_BATCH_SIZE ${ITEMS}, DROPS_BATCH_SIZE ${DROPS_BLUEPRINTS} · ${RUNS} run(s) per row, fresh database each, median (min–max)${QUICK ? ' · QUICK' : ''}\n`,
    );
    const rows: string[][] = [];
    for (const job of ['extract', 'drops'] as const) {
      for (const v of variants) {
        const ps = phases(v, job);
        const runRate = ps.map((p) => p.items / p.runS);
        const e2eRate = ps.map((p) => p.items / p.e2eS);
        const ratioRun = median(runRate) / ideal(v.concurrency);
        rows.push([
          `\`${ps[0]!.job}\``,
          String(v.concurrency),
          String(median(ps.map((p) => p.items))),
          range(ps.map((p) => p.runS)),
          range(runRate, 1),
          range(e2eRate, 1),
          fmt(ideal(v.concurrency), 0),
          fmt(ratioRun, 2),
          fmt(median(e2eRate) / ideal(v.concurrency), 2),
          ...diagnostics(ps),
          okText(ps),
        ]);
        facts.push(
          `${ps[0]!.job} at concurrency ${v.concurrency}: ${fmt(median(runRate), 1)} items/s = ${fmt(ratioRun, 2)} of the ideal ${fmt(ideal(v.concurrency), 0)}/s ` +
            `(target ≥ 0.8: ${ratioRun >= 0.8 ? 'met' : 'MISSED'}); calls in flight averaged ${med(ps, (p) => p.inFlightMean, 2)} of ${v.concurrency}, turnaround median ${med(ps, (p) => p.turnaroundMedianMs, 0)} ms.`,
        );
      }
    }
    console.log(
      markdownTable(
        ['job', 'LLM_CONCURRENCY', 'items', 'run s (job_logs)', 'items/s (job_logs)', 'items/s (POST → closed)', 'ideal items/s', 'ratio vs ideal (job_logs)', 'ratio vs ideal (POST → closed)', ...diagnosticHeaders, 'all items done'],
        rows,
      ),
    );
    const tails = variants.map((v) => `${fmt(ITEMS / (v.concurrency * Math.ceil(ITEMS / v.concurrency)), 2)} at concurrency ${v.concurrency}`).join(', ');
    facts.push(
      `Best ratio possible for extract-blueprints' ${ITEMS} items when calls go out in whole waves (${ITEMS} / (C × ⌈${ITEMS} / C⌉)): ${tails}; ` +
        'the rest of the gap is the turnaround.',
    );
    const peak = variants.map((v) => `${v.concurrency}: ${mib(max(v.runs.map((r) => r.peakRss[0]!)))} MiB`).join(', ');
    console.log('');
    for (const f of facts) console.log(`- ${f}`);
    console.log(`- Peak RSS of the service process over a whole run (extract + drops), by LLM_CONCURRENCY: ${peak}.`);
    for (const f of footnotes) console.log(`- ${f}`);
  } else {
    const c = CONCURRENCIES.join(', ');
    console.log('### B6. AI pipeline throughput with 1, 2 and 3 instances on one database\n');
    console.log(
      `${machineLine()} · LLM_CONCURRENCY ${c} · fake OpenAI latency ${LATENCY_MS} ms · ${ITEMS} harvest items, DROPS_BATCH_SIZE ${DROPS_BLUEPRINTS} · ` +
        `N × \`node src/main.ts\` (ROLE=all) on one database, one POST per job to instance 1 · ${RUNS} run(s) per row, fresh database each, median (min–max)${QUICK ? ' · QUICK' : ''}\n`,
    );
    const rows: string[][] = [];
    const fell: string[] = [];
    for (const job of ['extract', 'drops'] as const) {
      for (const concurrency of CONCURRENCIES) {
        const one = variants.find((v) => v.concurrency === concurrency && v.instances === 1)!;
        const base = median(phases(one, job).map((p) => p.items / p.runS));
        const curve: string[] = [];
        for (const v of variants.filter((x) => x.concurrency === concurrency)) {
          const ps = phases(v, job);
          const runRate = ps.map((p) => p.items / p.runS);
          const e2eRate = ps.map((p) => p.items / p.e2eS);
          rows.push([
            `\`${ps[0]!.job}\``,
            String(concurrency),
            String(v.instances),
            String(median(ps.map((p) => p.items))),
            range(runRate, 1),
            range(e2eRate, 1),
            ratio(median(runRate), base),
            fmt(median(runRate) / ideal(concurrency), 2),
            ...diagnostics(ps),
            ps.map((p) => p.byInstance.join('/')).join(', '),
            v.runs.map((r) => r.peakRss.map((b) => mib(b)).join('/')).join(', '),
            okText(ps),
          ]);
          curve.push(`${v.instances}: ${fmt(median(runRate), 1)}/s (${ratio(median(runRate), base)})`);
          if (median(runRate) < 0.95 * base) fell.push(`${ps[0]!.job} with ${v.instances} instances`);
        }
        facts.push(`${phases(one, job)[0]!.job}, concurrency ${concurrency}, items/s by instances: ${curve.join(' → ')}.`);
      }
    }
    console.log(
      markdownTable(
        ['job', 'LLM_CONCURRENCY', 'instances', 'items', 'items/s (job_logs)', 'items/s (POST → closed)', 'vs 1 instance', 'ratio vs ideal', ...diagnosticHeaders.map((h) => h.replace('service CPU', 'service CPU (all instances)')), 'LLM calls per instance, each run', 'peak RSS MiB per instance, each run', 'all items done'],
        rows,
      ),
    );
    console.log('');
    for (const f of facts) console.log(`- ${f}`);
    console.log(
      `- Target "throughput must not fall as instances are added" (a fall = median below 0.95 × one instance's, the run-to-run noise here): ` +
        (fell.length ? `MISSED for ${fell.join(', ')}.` : 'met.'),
    );
    console.log(
      '- Both queues are `stately` (one run of a job at a time across all instances) and one run claims the whole batch, ' +
        'so one instance makes all the calls of a run (see the per-instance call counts) and the others only poll: ' +
        'extra instances cannot add throughput to one job, they can only cost some (polling, CPU shared on one machine). ' +
        "A job's ceiling is LLM_CONCURRENCY / latency whatever the number of instances; more instances add availability, " +
        'and let the two jobs run at the same time on different instances.',
    );
    for (const f of footnotes) console.log(`- ${f}`);
  }
});
