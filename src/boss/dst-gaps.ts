import type { PgBoss } from 'pg-boss';
import { v5 as uuidv5 } from 'uuid';
import type { CronPayload } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import { unfiredOccurrences } from './cron-dst.ts';

/** How often the filler looks: well inside its window (cron-dst.ts GAP_WINDOW_MS), like pg-boss's 30 s cron pass. */
export const GAP_FILL_INTERVAL_MS = 30_000;

// Fixed, so every instance derives the same job id for the same occurrence.
const OCCURRENCE_NAMESPACE = '6f1d9c8e-3b0a-4c55-9a53-2a4f0d7e1b62';

/**
 * Sends the runs pg-boss's cron pass skips: on a spring-forward day, a wall time the clock jumps
 * over runs at that minute of the hour it lands on (cron-dst.ts). The job id is derived from the
 * schedule and the occurrence, so however many instances look, pg-boss stores one job.
 */
export function createDstGapFiller({ boss, logger }: { boss: Pick<PgBoss, 'getSchedules' | 'send'>; logger: Logger }) {
  return {
    async fill(now = new Date()): Promise<string[]> {
      const sent: string[] = [];
      for (const schedule of await boss.getSchedules()) {
        const data = schedule.data as Partial<CronPayload> | undefined;
        if (data?.trigger !== 'cron' || !data.scheduled_since) continue;
        for (const occurrence of unfiredOccurrences(schedule.cron, schedule.timezone, now)) {
          const at = occurrence.toISOString();
          const payload: CronPayload = { trigger: 'cron', cron: schedule.cron, tz: schedule.timezone, scheduled_since: data.scheduled_since, occurrence: at };
          const id = await boss.send(schedule.name, payload, { id: uuidv5(`${schedule.name}|${schedule.key}|${at}`, OCCURRENCE_NAMESPACE) });
          if (!id) continue; // another instance sent it, or the queue already holds a waiting run
          sent.push(id);
          logger.info({ job: schedule.name, jobId: id, occurrence: at, tz: schedule.timezone }, `sent ${schedule.name} for its ${at} occurrence: the clock skipped that wall time in ${schedule.timezone} (daylight saving), and pg-boss does not fire it`);
        }
      }
      return sent;
    },
  };
}
