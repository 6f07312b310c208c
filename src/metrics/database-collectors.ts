import { Gauge, type Registry } from 'prom-client';
import type { Registry as JobRegistry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';
import { QUEUE_STATES, readDatabaseSnapshot, type JobSnapshot, type SnapshotDeps } from './database-snapshot.ts';
import { withTimeout } from '../with-timeout.ts';

export type DatabaseCollectorsDeps = Omit<SnapshotDeps, 'jobNames'> & {
  jobs: JobRegistry;
  logger: Logger;
  /** Longest a scrape waits for the database before it answers without the database's gauges. */
  timeoutMs: number;
};

type Snapshot = Map<string, JobSnapshot>;

/**
 * Gauges read from the database when Prometheus scrapes (prom-client `collect()`), so they are the
 * same from every instance: take `max` across instances, not `sum`. One read serves every gauge of a
 * scrape (and scrapes that overlap it). When the database does not answer in time, the scrape still
 * answers: `scheduler_database_up` is 0 and these gauges are left out, rather than stale.
 */
export function registerDatabaseCollectors(registry: Registry, deps: DatabaseCollectorsDeps): void {
  const read = sharedRead(deps);
  const registers = [registry];
  const perJob = (name: string, help: string, set: (gauge: Gauge<'job_name'>, job: string, snapshot: JobSnapshot) => void) =>
    new Gauge({
      name,
      help,
      labelNames: ['job_name'] as const,
      registers,
      async collect() {
        const snapshot = await read();
        this.reset();
        for (const [job, jobSnapshot] of snapshot ?? []) set(this, job, jobSnapshot);
      },
    });

  new Gauge({
    name: 'scheduler_database_up',
    help: "1 when this scrape could read the database, 0 when it could not (the database's gauges are then left out).",
    registers,
    async collect() {
      this.set((await read()) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'scheduler_queue_jobs',
    help: "Jobs in each job's pg-boss queue by state (ready|deferred|blocked|active|failed), as pg-boss's monitor pass last counted them (every 10 s).",
    labelNames: ['job_name', 'state'] as const,
    registers,
    async collect() {
      const snapshot = await read();
      this.reset();
      for (const [job, { queue }] of snapshot ?? []) {
        if (queue) for (const state of QUEUE_STATES) this.set({ job_name: job, state }, queue[state]);
      }
    },
  });
  perJob('scheduler_dead_letter_queue_jobs', "Runs waiting in each job's dead-letter queue for an operator (retry or leave them), as pg-boss last counted them.", (gauge, job, { deadLetters }) => {
    if (deadLetters !== null) gauge.set({ job_name: job }, deadLetters);
  });
  perJob('scheduler_queue_oldest_waiting_seconds', "How long the oldest job ready to run in each job's queue has waited since it could start; 0 when none waits.", (gauge, job, { oldestWaitingSeconds }) =>
    gauge.set({ job_name: job }, oldestWaitingSeconds),
  );
  perJob('scheduler_schedule_active', "1 when the job's schedule is active, 0 when it is paused (job_schedule.is_active).", (gauge, job, { schedule }) => {
    if (schedule) gauge.set({ job_name: job }, schedule.active ? 1 : 0);
  });
  perJob('scheduler_schedule_next_run_timestamp_seconds', "The schedule's next occurrence as job_schedule.next_run_at holds it (Unix time); left out while it is paused.", (gauge, job, { schedule }) => {
    if (schedule?.nextRunAt) gauge.set({ job_name: job }, schedule.nextRunAt.getTime() / 1000);
  });
  perJob('scheduler_schedule_last_run_timestamp_seconds', "When the job's latest run started, whatever started it (Unix time, from job_logs); left out if it never ran.", (gauge, job, { lastStartedAt }) => {
    if (lastStartedAt) gauge.set({ job_name: job }, lastStartedAt.getTime() / 1000);
  });
  perJob(
    'scheduler_schedule_overdue_seconds',
    'How long ago the occurrence the schedule owes (the first after its latest run started, or after the schedule was set) passed without a run starting; 0 when on time or paused.',
    (gauge, job, { schedule }) => {
      if (schedule) gauge.set({ job_name: job }, schedule.overdueSeconds);
    },
  );
}

/**
 * One database read at a time, shared by whoever asks while it runs; each asker waits at most
 * `timeoutMs` and gets null when it failed or took longer. A read outrun by its timeout goes on
 * (its connection is not cut) and the next scrape shares it, so a slow database never has more than
 * one read of ours queued. A failure is logged once, when the database stops answering, and its
 * return once too: a scrape every 15 s must not log every 15 s.
 */
function sharedRead({ db, boss, jobs, logger, bossSchema, timeoutMs }: DatabaseCollectorsDeps): () => Promise<Snapshot | null> {
  const jobNames = [...jobs.keys()];
  let inFlight: Promise<Snapshot> | undefined;
  let answering = true;
  return async () => {
    if (!inFlight) {
      const started = readDatabaseSnapshot({ db, boss, jobNames, bossSchema });
      inFlight = started;
      started.then(
        () => {},
        () => {},
      ).finally(() => {
        if (inFlight === started) inFlight = undefined;
      });
    }
    try {
      const snapshot = await withTimeout(inFlight, timeoutMs);
      if (!answering) logger.info('metrics: the database answers again');
      answering = true;
      return snapshot;
    } catch (error) {
      if (answering) logger.warn({ err: error }, 'metrics: cannot read the database; scheduler_database_up is 0 and its gauges are left out until it answers');
      answering = false;
      return null;
    }
  };
}
