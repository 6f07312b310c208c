import { describe, expect, it } from 'vitest';
import { startFakeOpenAI } from '../testkit/fake-openai.ts';
import { sleep, waitFor } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { addItems, blueprintFor, requestsPerItem, serviceEnv, ServiceProcesses, sqlClient, timedFetch } from './support/faults.ts';
import { itemKeyOf } from './support/pipeline.ts';
import { createTestDatabase } from './support/postgres.ts';

/**
 * Three real service processes on one database: ROLE=api, ROLE=worker and ROLE=all. A schedule
 * edited through the API-only instance drives the workers every minute; one worker is killed -9 in
 * the middle of an occurrence. Each occurrence runs once, runs never overlap, each item is
 * processed once.
 */

const JOB = 'extract-blueprints';

describe('several instances on one database', () => {
  it('one job per cron occurrence, no overlapping runs, every item once, a kill -9 recovered, roles respected', async () => {
    const db = await createTestDatabase();
    const llm = await startFakeOpenAI();
    const sql = sqlClient(db.url);
    const procs = new ServiceProcesses();
    try {
      // The first request about item a1 never answers: that run is the one killed.
      let a1Hung = false;
      llm.respond((req) => {
        if (itemKeyOf(req) === 'a1' && !a1Hung) {
          a1Hung = true;
          return { hang: true };
        }
        return blueprintFor(req);
      });

      const env = serviceEnv(db.url, llm.url);
      const workerPort = await freePort();
      const [api, worker, all] = await Promise.all([
        procs.start({ ...env, ROLE: 'api' }),
        procs.start({ ...env, ROLE: 'worker', PORT: String(workerPort) }),
        procs.start({ ...env, ROLE: 'all' }),
      ]);
      // ROLE=worker opens no HTTP port.
      expect(worker.output()).toContain('worker only, no HTTP');
      await expect(fetch(`http://127.0.0.1:${workerPort}/healthz`, { signal: AbortSignal.timeout(3_000) })).rejects.toThrow();

      const items = await addItems(sql, ['a1', 'a2']);
      // Not in the last seconds of a minute, so the edit's own minute and the next one are told apart.
      if (new Date().getSeconds() >= 55) await sleep((61 - new Date().getSeconds()) * 1000);

      // The schedule, edited through the API-only instance, reaches pg-boss at once…
      const put = await timedFetch(`${api.url}/api/jobs/schedules/${JOB}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ cron_expression: '* * * * *' }),
      });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      const [{ edited_at: editedAt }] = await sql.q(`select now() as edited_at`);
      expect(await sql.q(`select cron from pgboss.schedule where name = $1`, [JOB])).toEqual([{ cron: '* * * * *' }]);

      // …and the workers follow it: the next minute's occurrence runs (the old cron, every 6 h, would not).
      const killedLog = await waitFor('the first cron run to hold a1 while a2 is done', async () => {
        const [row] = await sql.q(
          `select l.* from job_logs l join harvest_items i on i.claimed_by_log_id = l.id
           where l.metadata->>'trigger' = 'cron' and l.status = 'STARTED' and i.id = $1 and i.status = 'PROCESSING'`,
          [items.a1],
        );
        const [a2] = await sql.q(`select status from harvest_items where id = $1`, [items.a2]);
        return row && a2.status === 'BLUEPRINT_DONE' && requestsPerItem(llm.requests).a1 === 1 ? row : undefined;
      }, 80_000, 200);

      // kill -9 whichever worker runs it.
      const startedBy = (p: typeof worker) => p.logs().some((l) => l.msg === `starting job ${JOB}` && l.logId === killedLog.id);
      const runningIt = await waitFor('the log line of the worker running it', () => [worker, all].find(startedBy), 5_000, 50);
      expect([worker, all].filter(startedBy)).toHaveLength(1);
      expect((await runningIt.signal('SIGKILL')).code).toBeNull();
      await addItems(sql, ['b1', 'b2']).then((more) => Object.assign(items, more));

      // The survivor's reaper closes the lost run once pg-boss gives up on its heartbeat…
      const reaped = await waitFor('the killed run to be reaped', async () => (await sql.q(`select * from job_logs where id = $1 and status <> 'STARTED'`, [killedLog.id]))[0], 120_000, 500);
      expect(reaped).toMatchObject({ status: 'FAILED', error_message: 'interrupted: worker lost' });
      // …and pg-boss retries the occurrence's job. Its backoff (30–60 s) is not waited out.
      const killedJobId = killedLog.metadata.job_id as string;
      await sql.q(`update pgboss.job set start_after = now() where id = $1 and state = 'retry'`, [killedJobId]);

      // Two occurrences after the edit, settled, with every item done.
      await waitFor('two occurrences completed and every item done', async () => {
        const [{ n }] = await sql.q(
          `select count(distinct date_trunc('minute', created_on))::int as n from pgboss.job
           where name = $1 and data->>'trigger' = 'cron' and state = 'completed' and created_on >= date_trunc('minute', $2::timestamptz) + interval '1 minute'`,
          [JOB, editedAt],
        );
        const [{ open }] = await sql.q(`select count(*)::int as open from pgboss.job where name = $1 and id = $2 and state <> 'completed'`, [JOB, killedJobId]);
        const [{ left }] = await sql.q(`select count(*)::int as left from harvest_items where status <> 'BLUEPRINT_DONE'`);
        return n >= 2 && open === 0 && left === 0;
      }, 120_000, 500);

      // Stop the schedule (again through the API-only instance) so nothing moves while we look.
      const off = await timedFetch(`${api.url}/api/jobs/schedules/${JOB}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ is_active: false }) });
      expect(off.status).toBe(200);
      expect(await sql.q(`select cron from pgboss.schedule where name = $1`, [JOB])).toEqual([]);
      await waitFor('no job of the queue waiting or running', async () => (await sql.q(`select 1 from pgboss.job where name = $1 and state in ('created', 'retry', 'active')`, [JOB])).length === 0, 60_000, 500);

      // Each occurrence after the edit: exactly one pg-boss job and exactly one run that was not reaped.
      const jobs = await sql.q(
        `select id, date_trunc('minute', created_on) as minute, state from pgboss.job
         where name = $1 and data->>'trigger' = 'cron' order by created_on`,
        [JOB],
      );
      const logs = await sql.q(`select * from job_logs where job_name = $1 order by started_at, id`, [JOB]);
      const editMinute = new Date(Math.floor(new Date(editedAt).getTime() / 60_000) * 60_000).getTime();
      const occurrences = new Map<number, string[]>();
      for (const job of jobs) {
        const minute = new Date(job.minute).getTime();
        // pg-boss may send the occurrence of the edit's own minute at once; the runner drops it unrun.
        if (minute <= editMinute) {
          expect(logs.filter((l) => l.metadata.job_id === job.id)).toEqual([]);
          continue;
        }
        occurrences.set(minute, [...(occurrences.get(minute) ?? []), job.id]);
      }
      expect(occurrences.size).toBeGreaterThanOrEqual(2);
      for (const [minute, ids] of occurrences) {
        expect(ids, `pg-boss jobs of the ${new Date(minute).toISOString()} occurrence`).toHaveLength(1);
        const runs = logs.filter((l) => l.metadata.job_id === ids[0]);
        expect(runs.every((r) => r.metadata.trigger === 'cron')).toBe(true);
        const kept = runs.filter((r) => !r.metadata.reaped);
        expect(kept, `runs of the ${new Date(minute).toISOString()} occurrence`).toHaveLength(1);
        expect(kept[0].status).toBe('COMPLETED');
        if (ids[0] === killedJobId) {
          expect(runs.filter((r) => r.metadata.reaped).map((r) => r.id)).toEqual([killedLog.id]);
          expect(kept[0].metadata.attempt).toBe(2);
        } else {
          expect(runs).toHaveLength(1);
        }
      }
      expect(logs.every((l) => l.status !== 'STARTED' && l.ended_at !== null)).toBe(true);

      // Runs of the job never overlap in time (the reaped one aside: it is closed after the fact).
      const kept = logs.filter((l) => !l.metadata.reaped);
      for (let i = 1; i < kept.length; i++) {
        expect(new Date(kept[i - 1].ended_at).getTime(), `run ${kept[i - 1].id} ends before run ${kept[i].id} starts`).toBeLessThanOrEqual(new Date(kept[i].started_at).getTime());
      }

      // Every item processed exactly once; only the item of the killed attempt was asked for twice.
      const blueprints = await sql.q(`select harvest_item_id, count(*)::int as n from exam_blueprints group by harvest_item_id order by harvest_item_id`);
      expect(blueprints).toEqual(Object.values(items).sort((a, b) => a - b).map((id) => ({ harvest_item_id: id, n: 1 })));
      expect(requestsPerItem(llm.requests)).toEqual({ a1: 2, a2: 1, b1: 1, b2: 1 });

      // ROLE=api never runs a job, and does not claim to schedule any.
      expect(api.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('starting job'))).toBe(false);
      expect(api.logs().some((l) => /scheduling job|found \d+ scheduled jobs/.test(String(l.msg)))).toBe(false);
      expect(api.logs().some((l) => /^2 active schedules, run by worker instances/.test(String(l.msg)))).toBe(true);
      expect(worker.logs().some((l) => /^scheduling job extract-blueprints with cron/.test(String(l.msg)))).toBe(true);
      expect(api.logs().find((l) => /job scheduler ready/.test(l.msg))?.role).toBe('api');
    } finally {
      await procs.killAll();
      await llm.close();
      await sql.close();
      await db.drop();
    }
  }, 300_000);
});
