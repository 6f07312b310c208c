import type { Registry } from 'prom-client';
import type { SchedulerEvents } from '../events.ts';
import { TRIGGERS } from '../jobs/job.ts';
import type { Registry as JobRegistry } from '../jobs/registry.ts';
import { counter, histogram } from './families.ts';

/** 10 ms … 1 h: from a run with nothing to do to a long pipeline batch. */
export const RUN_DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

const STATUSES = ['completed', 'failed'] as const;

/**
 * What this instance's runner did, counted from the event seam (`run:end`, `run:reaped`). Counters
 * are per instance: each counts the runs it ran; sum them across instances. Every registered job's
 * series exist at 0 from the start, so `rate()` and `increase()` see the first run.
 * Returns the function that unsubscribes.
 */
export function registerRunMetrics(registry: Registry, { events, jobs }: { events: SchedulerEvents; jobs: JobRegistry }): () => void {
  const runs = counter(registry, 'scheduler_job_runs_total', 'Runs this instance ended, by job, how they ended (completed|failed) and what started them (cron|manual|cli).', ['job_name', 'status', 'trigger']);
  const duration = histogram(registry, 'scheduler_job_run_duration_seconds', 'How long the runs this instance ended took, handler start to end, by job and status.', ['job_name', 'status'], RUN_DURATION_BUCKETS);
  const items = counter(registry, 'scheduler_job_items_total', 'Items the runs of this instance processed or failed, by job and outcome (processed|failed).', ['job_name', 'outcome']);
  const retries = counter(registry, 'scheduler_job_retries_total', 'Failed runs this instance ended (or its reaper closed) that pg-boss retries.', ['job_name']);
  const deadLetters = counter(registry, 'scheduler_job_dead_letters_total', "Failed runs this instance ended (or its reaper closed) that went to their job's dead-letter queue (retries spent, or a configuration error).", ['job_name']);
  const reaped = counter(registry, 'scheduler_job_reaped_runs_total', "Runs this instance's reaper closed as FAILED because their worker was lost (they never end otherwise).", ['job_name']);

  for (const job of jobs.keys()) {
    for (const status of STATUSES) {
      for (const trigger of TRIGGERS) runs.inc({ job_name: job, status, trigger }, 0);
      duration.zero({ job_name: job, status });
    }
    items.inc({ job_name: job, outcome: 'processed' }, 0);
    items.inc({ job_name: job, outcome: 'failed' }, 0);
    for (const perJob of [retries, deadLetters, reaped]) perJob.inc({ job_name: job }, 0);
  }

  const offEnd = events.on('run:end', (run) => {
    const status = run.status === 'COMPLETED' ? 'completed' : 'failed';
    runs.inc({ job_name: run.job, status, trigger: run.trigger });
    duration.observe({ job_name: run.job, status }, run.durationMs / 1000);
    if (run.itemsProcessed > 0) items.inc({ job_name: run.job, outcome: 'processed' }, run.itemsProcessed);
    if (run.itemsFailed > 0) items.inc({ job_name: run.job, outcome: 'failed' }, run.itemsFailed);
    if (run.willRetry) retries.inc({ job_name: run.job });
    if (run.deadLettered) deadLetters.inc({ job_name: run.job });
  });
  // A run whose worker was lost ends here, not in run:end: its fate counts like a run's end.
  const offReaped = events.on('run:reaped', (run) => {
    reaped.inc({ job_name: run.job });
    if (run.willRetry) retries.inc({ job_name: run.job });
    if (run.deadLettered) deadLetters.inc({ job_name: run.job });
  });
  return () => {
    offEnd();
    offReaped();
  };
}
