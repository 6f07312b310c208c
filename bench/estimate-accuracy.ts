/**
 * Estimate accuracy (issue 13): how close GET /api/jobs/{jobName}/estimate?all=true comes to what
 * the runs that follow really report, and how long it takes on a 10 k backlog.
 *
 * Accuracy: the service in-process on a fresh embedded PostgreSQL, a fake OpenAI server that
 * counts `usage` with the tokenizer (testkit/fake-openai.ts `usage: 'tokenizer'`), 200 Portuguese
 * notices of varied length (0.4 to 15 KB), answers of realistic, varied length (blueprints of 3 to
 * 18 topics; 3 to 5 drops of 80 to 200 words). EXTRACT_BATCH_SIZE and DROPS_BATCH_SIZE are 20, so
 * the backlog takes ten-odd runs per job. For each job:
 *   - cold: the backlog estimate before any run (completion tokens from the stated default);
 *   - one run (the first batch), then warm: the estimate of what is left (completion tokens from
 *     that run), then runs until the backlog is empty.
 * Each estimate is compared with the sum of the runs it covers: job_logs metadata.llm token sums ×
 * the price table (the `llm_calls` ledger's cost_usd when that table exists and is filled).
 *
 * Scale: 10,000 PENDING notices (~5 KB) and 10,000 blueprints of 6 topics, on a second database;
 * the time of `?all=true` for each job, and the longest event-loop stall meanwhile.
 *
 *   cd /work/main && npm run bench:estimate [-- --quick]
 */
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { zodResponseFormat } from 'openai/helpers/zod';
import { parseEnv } from '../src/env.ts';
import { BlueprintOutputSchema, EXTRACT_SYSTEM_PROMPT, extractUserPrompt } from '../src/jobs/extract-blueprints.prompt.ts';
import { countPromptTokens, loadEncoding } from '../src/llm/estimate-tokens.ts';
import { createRegistry, JOBS } from '../src/jobs/registry.ts';
import { loadPrices } from '../src/llm/prices.ts';
import { startService, type Service } from '../src/service.ts';
import { startFakeOpenAI, type FakeReply, type FakeRequest } from '../testkit/fake-openai.ts';
import { sleep } from '../testkit/poll.ts';
import { fmt, machineLine, main, markdownTable, max, median, NEVER_CRON, note, onCleanup, QUICK, quietLogger, seededRandom, sized, startPostgres } from './lib.ts';

const ITEMS = 200;
const BATCH = 20;
const SCALE = sized(1_000, 10_000);
const REPEATS = sized(1, 5);
const MODEL = 'gpt-4o-mini';
const prices = loadPrices(undefined);

const SECTIONS = [
  'EDITAL DE ABERTURA DE INSCRIÇÕES. O Presidente do Tribunal, no uso de suas atribuições legais, torna pública a realização de concurso público para provimento de cargos do quadro de pessoal.',
  '1. DAS DISPOSIÇÕES PRELIMINARES. 1.1 O concurso público será regido por este Edital e executado pela banca organizadora. 1.2 A seleção compreenderá prova objetiva, de caráter eliminatório e classificatório.',
  '2. DOS REQUISITOS PARA INVESTIDURA. 2.1 Ser brasileiro nato ou naturalizado; estar em gozo dos direitos políticos; estar quite com as obrigações eleitorais e, se do sexo masculino, com as militares.',
  '3. DAS INSCRIÇÕES. 3.1 As inscrições serão realizadas exclusivamente via internet, no período indicado no cronograma. 3.2 O valor da taxa de inscrição será de R$ 120,00 para o cargo de nível superior.',
  'LÍNGUA PORTUGUESA: 1 Compreensão e interpretação de textos de gêneros variados. 2 Reconhecimento de tipos e gêneros textuais. 3 Domínio da ortografia oficial. 4 Emprego do sinal indicativo de crase.',
  'DIREITO CONSTITUCIONAL: 1 Constituição: conceito, objeto, classificações. 2 Princípios fundamentais. 3 Direitos e garantias fundamentais: direitos e deveres individuais e coletivos; direitos sociais.',
  'DIREITO ADMINISTRATIVO: 1 Estado, governo e administração pública. 2 Ato administrativo: conceito, requisitos, atributos, classificação e espécies. 3 Agentes públicos. 4 Licitações e contratos (Lei nº 14.133/2021).',
  'NOÇÕES DE INFORMÁTICA: 1 Conceitos de Internet e intranet. 2 Correio eletrônico. 3 Segurança da informação: procedimentos de segurança, vírus, worms e pragas virtuais. 4 Computação em nuvem.',
  'RACIOCÍNIO LÓGICO-MATEMÁTICO: 1 Estruturas lógicas. 2 Lógica de argumentação: analogias, inferências, deduções e conclusões. 3 Diagramas lógicos. 4 Porcentagem, juros simples e compostos.',
  '10. DAS DISPOSIÇÕES FINAIS. 10.1 A inscrição do candidato implicará a aceitação das normas para o concurso contidas neste Edital. 10.2 Os casos omissos serão resolvidos pela comissão do concurso.',
];
const WORDS = 'crase regência verbal nominal preposição artigo feminino concordância sujeito predicado oração período pontuação vírgula exemplo banca questão prova candidato princípio legalidade moralidade eficiência publicidade'.split(' ');

const random = seededRandom(13);
const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const words = (n: number) => Array.from({ length: n }, () => WORDS[between(0, WORDS.length - 1)]).join(' ');

function noticeOf(i: number, paragraphs: number): string {
  return `${Array.from({ length: paragraphs }, (_, k) => SECTIONS[(i + k) % SECTIONS.length]).join('\n')}\n[[item:${i}]]`;
}

const userMessage = (req: FakeRequest) => req.messages.find((m) => m.role === 'user')?.content ?? '';

function responder(req: FakeRequest): FakeReply {
  if (req.responseFormatName === 'exam_blueprint') {
    const i = /\[\[item:(\d+)\]\]/.exec(userMessage(req))?.[1] ?? '0';
    return {
      content: {
        exam_name: `Concurso Público ${i} — Analista Judiciário, Área Administrativa`,
        organization: `Tribunal Regional do Trabalho da ${between(1, 24)}ª Região`,
        topics: Array.from({ length: between(3, 18) }, (_, k) => ({ code: `T${i}-${k + 1}`, name: `${words(between(3, 12))}`, discipline: SECTIONS[k % SECTIONS.length]!.split(':')[0]!.slice(0, 40) })),
      },
    };
  }
  return { content: { drops: Array.from({ length: between(3, 5) }, (_, k) => ({ title: `Drop ${k + 1}: ${words(between(4, 9))}`, content: words(between(80, 200)) })) } };
}

type Phase = { label: string; estimate: any; actual: { calls: number; prompt: number; completion: number; cost: number } };

async function main_(): Promise<void> {
  const postgres = await startPostgres('estimate');
  const fake = await startFakeOpenAI({ usage: 'tokenizer' });
  onCleanup(() => fake.close());
  fake.respond(responder);
  const registry = createRegistry(JOBS.map((job) => ({ ...job, defaultCron: NEVER_CRON })));
  const start = async (database: string, batch: number): Promise<Service> => {
    const env = parseEnv({
      DATABASE_URL: await postgres.createDatabase(database),
      PORT: '0',
      OPENAI_API_KEY: 'sk-bench-estimate',
      OPENAI_BASE_URL: fake.url,
      OPENAI_MODEL: MODEL,
      LLM_CONCURRENCY: '8',
      EXTRACT_BATCH_SIZE: String(batch),
      DROPS_BATCH_SIZE: String(batch),
      LOG_LEVEL: 'warn',
      RUN_RATE_LIMIT_PER_MINUTE: '10000',
    });
    const service = await startService(env, quietLogger('warn'), registry);
    onCleanup(() => service.stop());
    return service;
  };
  const get = async (service: Service, path: string) => {
    const res = await fetch(new URL(path, service.url));
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>;
  };

  // ---- accuracy
  const service = await start('accuracy', BATCH);
  const pool = service.database.pool;
  const lengths = Array.from({ length: ITEMS }, () => between(2, 80));
  await pool.query(`insert into harvest_items (title, source_url, content) select 'Edital ' || i, 'https://example.org/edital/' || i, c from unnest($1::text[]) with ordinality as t(c, i)`, [
    lengths.map((n, k) => noticeOf(k + 1, n)),
  ]);
  const runOnce = async (job: string): Promise<number> => {
    const res = await fetch(new URL(`/api/jobs/run/${job}`, service.url), { method: 'POST' });
    if (res.status !== 202) throw new Error(`run ${job}: ${res.status} ${await res.text()}`);
    const { jobId } = (await res.json()) as { jobId: string };
    for (;;) {
      const { rows } = await pool.query(`select id, status, error_message from job_logs where job_id = $1 and status <> 'STARTED'`, [jobId]);
      if (rows[0]) {
        if (rows[0].status !== 'COMPLETED') throw new Error(`${job} run ended ${rows[0].status}: ${rows[0].error_message}`);
        return rows[0].id;
      }
      await sleep(50);
    }
  };
  const actualOf = async (logIds: number[]) => {
    const { rows } = await pool.query(
      `select coalesce(sum((metadata->'llm'->>'calls')::int), 0)::int as calls, coalesce(sum((metadata->'llm'->>'prompt_tokens')::bigint), 0)::int as prompt,
              coalesce(sum((metadata->'llm'->>'completion_tokens')::bigint), 0)::int as completion from job_logs where id = any($1)`,
      [logIds],
    );
    const { calls, prompt, completion } = rows[0];
    const ledger = await ledgerCost(pool, logIds);
    costSources.add(ledger === null ? 'job_logs metadata.llm tokens × prices' : 'the llm_calls ledger (sum of cost_usd)');
    return { calls, prompt, completion, cost: ledger ?? prices.cost(MODEL, { prompt_tokens: prompt, cached_prompt_tokens: 0, completion_tokens: completion })! };
  };

  const costSources = new Set<string>();
  const phases: Phase[] = [];
  const timings: string[][] = [];
  for (const job of ['extract-blueprints', 'generate-drops']) {
    const cold = await get(service, `/api/jobs/${job}/estimate?all=true`);
    note(`${job}: cold estimate ${JSON.stringify(cold)}`);
    const first = await runOnce(job);
    const warm = await get(service, `/api/jobs/${job}/estimate?all=true`);
    const rest: number[] = [];
    while ((await get(service, `/api/jobs/${job}/estimate`)).items > 0) rest.push(await runOnce(job));
    phases.push({ label: `${job}, cold (default completion)`, estimate: cold, actual: await actualOf([first, ...rest]) });
    phases.push({ label: `${job}, warm (after 1 run)`, estimate: warm, actual: await actualOf(rest) });
  }

  // ---- scale
  const scale = await start('scale', 20);
  const scalePool = scale.database.pool;
  await scalePool.query(
    `insert into harvest_items (title, content) select 'Edital ' || i, repeat($1::text, 1 + i % 5) || ' [[item:' || i || ']]' from generate_series(1, $2::int) i`,
    [SECTIONS.slice(0, 6).join(' '), SCALE],
  );
  // The blueprints' notices are done already (BLUEPRINT_DONE), so the extract backlog stays the 10 k above.
  await scalePool.query(
    `with items as (insert into harvest_items (title, content, status) select 'Feito ' || i, 'x', 'BLUEPRINT_DONE' from generate_series(1, $1::int) i returning id)
     insert into exam_blueprints (harvest_item_id, exam_name, organization, topics, raw_output, model)
     select id, 'Concurso ' || id, 'Tribunal', (select jsonb_agg(jsonb_build_object('code', 'T' || k, 'name', 'Tópico ' || k || ' de regência verbal e nominal', 'discipline', 'Língua Portuguesa')) from generate_series(1, 6) k), '{}'::jsonb, $2
     from items`,
    [SCALE, MODEL],
  );
  for (const job of ['extract-blueprints', 'generate-drops']) {
    for (const query of ['', '?all=true']) {
      await get(scale, `/api/jobs/${job}/estimate${query}`); // first call loads the tokenizer: not timed
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      const times: number[] = [];
      let answer: any;
      for (let r = 0; r < REPEATS; r++) {
        const started = performance.now();
        answer = await get(scale, `/api/jobs/${job}/estimate${query}`);
        times.push(performance.now() - started);
      }
      delay.disable();
      timings.push([
        job,
        query || '(next run)',
        String(answer.items),
        String(answer.llm_calls),
        `${fmt(median(times), 0)} (${fmt(max(times), 0)})`,
        `${fmt(delay.percentile(99) / 1e6, 0)} / ${fmt(delay.max / 1e6, 0)}`,
        (/user messages of (\d+ of the \d+)/.exec(answer.basis.prompt_tokens)?.[1] ?? 'all') + ' counted',
      ]);
    }
  }

  // What sampling saves, and what it costs in accuracy: every pending notice counted, as the run would send it.
  const sampled = await get(scale, '/api/jobs/extract-blueprints/estimate?all=true');
  const encoding = await loadEncoding('o200k_base');
  const format = zodResponseFormat(BlueprintOutputSchema, 'exam_blueprint');
  const exactStarted = performance.now();
  let exact = 0;
  const { rows: pending } = await scalePool.query(`select title, source_url, content from harvest_items where status = 'PENDING' order by id`);
  for (const item of pending) exact += countPromptTokens(encoding, [{ role: 'system', content: EXTRACT_SYSTEM_PROMPT }, { role: 'user', content: extractUserPrompt(item) }], format);
  const exactMs = performance.now() - exactStarted;

  const pct = (est: number, act: number) => (act ? `${est - act >= 0 ? '+' : ''}${fmt(((est - act) / act) * 100, 1)} %` : '—');
  console.log(`### Estimate accuracy${QUICK ? ' (quick run: not the figures to quote)' : ''}\n\n${machineLine()}\n`);
  console.log(
    markdownTable(
      ['estimate (all=true)', 'calls est / run', 'prompt tokens est / run', 'Δ prompt', 'completion est / run', 'Δ completion', 'cost USD est / run', 'Δ cost'],
      phases.map(({ label, estimate: e, actual: a }) => [
        label,
        `${e.llm_calls} / ${a.calls}`,
        `${e.prompt_tokens} / ${a.prompt}`,
        pct(e.prompt_tokens, a.prompt),
        `${e.completion_tokens} / ${a.completion}`,
        pct(e.completion_tokens, a.completion),
        `${e.cost_usd?.toFixed(4)} / ${a.cost.toFixed(4)}`,
        pct(e.cost_usd, a.cost),
      ]),
    ),
  );
  console.log(`\nCost of the runs from ${[...costSources].join(' and ')}.`);
  console.log(`\n${SCALE} pending notices and ${SCALE} blueprints × 6 topics (a first call, not timed, loads the tokenizer; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores):\n`);
  console.log(
    `\nextract-blueprints ?all=true sampled: ${sampled.prompt_tokens} prompt tokens; every notice counted: ${exact} (${pct(sampled.prompt_tokens, exact)}), ` +
      `which took ${fmt(exactMs / 1000, 1)} s of CPU in one piece.\n`,
  );
  console.log(markdownTable(['job', 'scope', 'items', 'llm_calls', `ms, median of ${REPEATS} (max)`, 'event-loop delay p99 / max, ms', 'user messages'], timings));
}

/** The run's cost from the `llm_calls` ledger when it exists and has rows for these runs; else null. */
async function ledgerCost(pool: pg.Pool, logIds: number[]): Promise<number | null> {
  const { rows: columns } = await pool.query(`select column_name from information_schema.columns where table_name = 'llm_calls'`);
  const names = columns.map((c) => c.column_name as string);
  const logColumn = names.find((n) => ['log_id', 'job_log_id', 'run_log_id'].includes(n));
  if (!logColumn || !names.includes('cost_usd')) return null;
  const { rows } = await pool.query(`select count(*)::int as n, sum(cost_usd)::float8 as cost from llm_calls where ${logColumn} = any($1)`, [logIds]);
  return rows[0].n > 0 ? rows[0].cost : null;
}

await main(main_);
