/**
 * The data of bench/data-at-scale.ts (B8), made by generate_series in SQL, never through the LLM.
 * Deterministic: every pseudo-random choice is a hash of the row number. Shapes follow what the
 * jobs write (src/jobs/extract-blueprints.ts, generate-drops.ts, src/boss/runner.ts), with sizes of
 * real rows: a notice of a few hundred bytes, 10 topics a blueprint, 5 drops a topic.
 */
import type pg from 'pg';
import { ALERT_QUEUE } from '../src/alerts/delivery.ts';
import { deadLetterQueueOf } from '../src/jobs/job.ts';

export type Scale = {
  label: string;
  /** harvest_items; the newest `pending` of them are PENDING (extract takes the oldest first). */
  harvestItems: number;
  pending: number;
  /** exam_blueprints, one per harvest item 1..blueprints; the newest `withoutDrops` have none yet. */
  blueprints: number;
  withoutDrops: number;
  /** job_logs rows (the run history). */
  jobLogs: number;
  /** Finished pg-boss jobs of our two job queues (the week pg-boss keeps them). */
  finishedJobs: number;
};

export const TOPICS_PER_BLUEPRINT = 10;
export const DROPS_PER_TOPIC = 5;
export const JOB_QUEUES = ['extract-blueprints', 'generate-drops'] as const;
/** Waiting jobs outside our job queues (dead letters; alert deliveries piled up behind a receiver that is down, when the alert queue exists: only with ALERT_WEBHOOK_URL set). */
export const OTHER_WAITING = { [ALERT_QUEUE]: 300, [deadLetterQueueOf('extract-blueprints')]: 50, [deadLetterQueueOf('generate-drops')]: 50 } as const;

export const dropsOf = (scale: Scale) => (scale.blueprints - scale.withoutDrops) * TOPICS_PER_BLUEPRINT * DROPS_PER_TOPIC;

/** u(k): a uniform number in [0, 1) from row i and salt k. */
const u = (k: number, row = 'i') => `((hashint8(${row}::bigint * 16 + ${k}) & 2147483647)::float8 / 2147483648.0)`;

const CHUNK = 250_000;

/** Runs `statement` over 1..n in chunks ($1, $2: the chunk's first and last row), calling `progress` after each. */
async function chunked(client: pg.Client, n: number, chunk: number, statement: string, params: unknown[], progress: (done: number) => void): Promise<void> {
  for (let lo = 1; lo <= n; lo += chunk) {
    const hi = Math.min(n, lo + chunk - 1);
    await client.query(statement, [lo, hi, ...params]);
    progress(hi);
  }
}

export async function seedHarvestItems(client: pg.Client, scale: Scale, progress: (done: number) => void): Promise<void> {
  // Two years of notices in id order; 3 % of those without a blueprint failed extraction.
  await chunked(client, scale.harvestItems, CHUNK, `
    insert into harvest_items (title, source_url, content, status, error_message, created_at, updated_at)
    select 'Edital nº ' || i || '/2026 — Concurso público para provimento de cargos efetivos',
           'https://notices.example.gov.br/editais/' || i || '.pdf',
           'Edital ' || i || '. O órgão torna pública a abertura de inscrições. ' || repeat(md5(i::text) || ' ', 8),
           status,
           case when status = 'BLUEPRINT_ERROR' then 'model answer had no topics' end,
           created, created + case when status = 'PENDING' then interval '0' else interval '2 hours' end
    from (
      select i,
             case when i > $3::int - $4::int then 'PENDING'
                  when i > $5::int and ${u(1)} < 0.03 then 'BLUEPRINT_ERROR'
                  else 'BLUEPRINT_DONE' end as status,
             now() - interval '730 days' + (i::float8 / $3::int) * interval '730 days' as created
      from generate_series($1::int, $2::int) as i
    ) s`, [scale.harvestItems, scale.pending, scale.blueprints], progress);
}

/** The 10 topics of blueprint `b` (a SQL expression of the row `b`). */
const topicsSql = `(
  select jsonb_agg(jsonb_build_object(
           'code', d.code || '-' || lpad(k::text, 2, '0'),
           'name', 'Tópico ' || k || ' de ' || d.name || ': conceitos, legislação e jurisprudência',
           'discipline', d.name) order by k)
  from generate_series(1, ${TOPICS_PER_BLUEPRINT}) as k,
       lateral (select (array['PORT', 'DCON', 'DADM', 'RLOG', 'INFO', 'ADMP'])[1 + (hashint8(b * 31 + k) & 2147483647) % 6] as code,
                       (array['Língua Portuguesa', 'Direito Constitucional', 'Direito Administrativo', 'Raciocínio Lógico', 'Informática', 'Administração Pública'])[1 + (hashint8(b * 31 + k) & 2147483647) % 6] as name) d
)`;

export async function seedBlueprints(client: pg.Client, scale: Scale, progress: (done: number) => void): Promise<void> {
  await chunked(client, scale.blueprints, 50_000, `
    insert into exam_blueprints (id, harvest_item_id, exam_name, organization, topics, raw_output, model, drops_generated_at, created_at)
    overriding system value
    select b, b, 'Concurso ' || b || ' — Analista Judiciário', 'Tribunal Regional ' || (1 + b % 24),
           topics,
           jsonb_build_object('exam_name', 'Concurso ' || b || ' — Analista Judiciário', 'organization', 'Tribunal Regional ' || (1 + b % 24), 'topics', topics),
           'gpt-4o-mini',
           case when b <= $3::int - $4::int then created + interval '3 hours' end,
           created
    from (
      select b, ${topicsSql} as topics, now() - interval '700 days' + (b::float8 / $3::int) * interval '700 days' as created
      from generate_series($1::int, $2::int) as b
    ) s`, [scale.blueprints, scale.withoutDrops], progress);
  await client.query(`select setval(pg_get_serial_sequence('exam_blueprints', 'id'), $1)`, [scale.blueprints]);
}

export async function seedDrops(client: pg.Client, scale: Scale, progress: (done: number) => void): Promise<void> {
  const withDrops = scale.blueprints - scale.withoutDrops;
  // Written a blueprint at a time, as a run does: topics in the blueprint's order, positions 1..5.
  await chunked(client, withDrops, 10_000, `
    insert into drops (blueprint_id, topic_code, title, content, position, created_at)
    select bp.id, t->>'code', 'Drop ' || p || ': ' || (t->>'name'),
           'Resumo: ' || repeat(md5(bp.id::text || (t->>'code') || p) || ' ', 12),
           p, bp.drops_generated_at
    from exam_blueprints bp
    cross join lateral jsonb_array_elements(bp.topics) with ordinality as e(t, k)
    cross join generate_series(1, ${DROPS_PER_TOPIC}) as p
    where bp.id between $1 and $2
    order by bp.id, k, p`, [], (done) => progress(done * TOPICS_PER_BLUEPRINT * DROPS_PER_TOPIC));
}

/** pg-boss's job id of finished job `k` (job_logs.job_id of its run). */
const jobIdSql = (k: string) => `md5('job-' || ${k})::uuid`;

/**
 * pg-boss's job table (pgboss.job, partitioned by queue name): `finishedJobs` finished jobs of our
 * two queues over the last 6 days (pg-boss deletes them after 7), 96 % completed, 3 % failed, 1 %
 * cancelled; in each of our queues the most a stately queue holds waiting: one created, one retry
 * (due in an hour), one active (heartbeat off and a day's expiry, so the supervisor leaves it
 * alone); and OTHER_WAITING jobs waiting in the alert and dead-letter queues (the queue route must
 * skip them). Rows are inserted as pg-boss's own insert would write them, with the queue's policy.
 */
export async function seedBossJobs(client: pg.Client, scale: Scale): Promise<void> {
  await client.query(`
    insert into pgboss.job (id, name, data, state, policy, retry_limit, retry_count, created_on, start_after, started_on, completed_on, output)
    select ${jobIdSql('k')}, q.name, jsonb_build_object('trigger', case when ${u(2, 'k')} < 0.9 then 'cron' else 'manual' end),
           state::pgboss.job_state, q.policy, 3, case when state = 'failed' then 3 else 0 end,
           created, created, created + interval '1 second', created + interval '40 seconds',
           case when state = 'completed' then jsonb_build_object('itemsProcessed', 10) end
    from (
      select k, $2::text[] as names,
             case when ${u(1, 'k')} < 0.96 then 'completed' when ${u(1, 'k')} < 0.99 then 'failed' else 'cancelled' end as state,
             now() - interval '6 days' + (k::float8 / $1::int) * interval '6 days' - interval '1 minute' as created
      from generate_series(1, $1::int) as k
    ) s
    join pgboss.queue q on q.name = s.names[1 + k % 2]`, [scale.finishedJobs, JOB_QUEUES]);
  await client.query(`
    insert into pgboss.job (id, name, data, state, policy, retry_limit, retry_count, created_on, start_after, started_on, heartbeat_seconds, expire_seconds)
    select gen_random_uuid(), q.name, '{"trigger":"manual"}', w.state::pgboss.job_state, q.policy, 3,
           case when w.state = 'retry' then 1 else 0 end,
           now() - interval '2 minutes',
           case when w.state = 'retry' then now() + interval '1 hour' else now() - interval '2 minutes' end,
           case when w.state = 'active' then now() - interval '1 minute' end,
           null, 86400
    from pgboss.queue q cross join (values ('created'), ('retry'), ('active')) as w(state)
    where q.name = any($1::text[])`, [JOB_QUEUES]);
  for (const [queue, n] of Object.entries(OTHER_WAITING)) {
    await client.query(`
      insert into pgboss.job (name, data, state, policy, retry_count, start_after)
      select q.name, jsonb_build_object('alertId', k), case when k % 3 = 0 then 'retry' else 'created' end::pgboss.job_state, q.policy,
             case when k % 3 = 0 then 1 else 0 end, now() + case when k % 3 = 0 then interval '10 minutes' else interval '0' end
      from pgboss.queue q, generate_series(1, $2::int) as k where q.name = $1::text`, [queue, n]);
  }
}

/**
 * job_logs: `jobLogs` runs over the last 400 days, ids in time order; the newest `finishedJobs`
 * are the runs of those pg-boss jobs (job_id set); older runs' jobs are gone from pg-boss. Plus a
 * STARTED row for each active job and a FAILED one for each retrying job of our queues.
 */
export async function seedJobLogs(client: pg.Client, scale: Scale, progress: (done: number) => void): Promise<void> {
  const older = scale.jobLogs - scale.finishedJobs;
  await chunked(client, scale.jobLogs, CHUNK, `
    insert into job_logs (job_name, status, started_at, ended_at, items_processed, items_failed, error_message, metadata, job_id)
    select ($3::text[])[1 + abs(k) % 2], case when failed then 'FAILED' else 'COMPLETED' end, started, started + interval '40 seconds',
           case when failed then 0 else 10 end, 0, case when failed then 'timed out after 900 s' end,
           jsonb_build_object('job_id', job_id, 'trigger', 'cron', 'attempt', 1, 'duration_ms', 40000), job_id
    from (
      select i, k, ${u(3)} < 0.04 as failed,
             case when k >= 1 then ${jobIdSql('k')} else md5('gone-' || i)::uuid end::text as job_id,
             case when k >= 1 then now() - interval '6 days' + (k::float8 / $5::int) * interval '6 days' - interval '1 minute' + interval '1 second'
                  else now() - interval '400 days' + (i::float8 / greatest($4::int, 1)) * interval '394 days' end as started
      from (select i, i - $4::int as k from generate_series($1::int, $2::int) as i) n
    ) s`, [JOB_QUEUES, older, scale.finishedJobs], progress);
  await client.query(`
    insert into job_logs (job_name, status, started_at, ended_at, error_message, metadata, job_id)
    select j.name, case when j.state = 'active' then 'STARTED' else 'FAILED' end, coalesce(j.started_on, now() - interval '2 minutes'),
           case when j.state = 'retry' then now() - interval '90 seconds' end,
           case when j.state = 'retry' then 'interrupted: worker lost' end,
           jsonb_build_object('job_id', j.id, 'trigger', 'manual', 'attempt', 1), j.id::text
    from pgboss.job j where j.name = any($1::text[]) and j.state in ('active', 'retry')`, [JOB_QUEUES]);
}
