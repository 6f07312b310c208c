import { createRoute, z } from '@hono/zod-openapi';
import type { RunStatsRow } from '../../../db/run-stats.ts';
import { API_ERRORS, BEARER, errors, json } from '../../lib/contract.ts';
import { instant, text, timestamp } from '../../lib/schemas.ts';

/** /api/jobs/stats: runs per local day and job, for the console's charts. */

const tags = ['runs'];
const DAY_MS = 24 * 3_600_000;
const DEFAULT_RANGE_DAYS = 14;
/** About a quarter: the longest range a chart asks for, and a bound on what one request scans. */
const MAX_RANGE_DAYS = 92;

const StatsQuerySchema = z
  .object({
    from: instant('from').optional().openapi({ description: `start, inclusive (default: \`to\` minus ${DEFAULT_RANGE_DAYS} days)`, example: '2026-01-01T00:00:00Z' }),
    to: instant('to').optional().openapi({ description: 'end, exclusive (default: now)', example: '2026-01-15T00:00:00Z' }),
    job: text().optional().openapi({ description: 'only this job (a registered job: 404 otherwise)', example: 'extract-blueprints' }),
  })
  .transform(({ from, to, job }) => {
    const end = to ? new Date(to) : new Date();
    return { from: from ? new Date(from) : new Date(end.getTime() - DEFAULT_RANGE_DAYS * DAY_MS), to: end, job };
  })
  .superRefine(({ from, to }, ctx) => {
    const days = (to.getTime() - from.getTime()) / DAY_MS;
    if (days <= 0) ctx.addIssue({ code: 'custom', path: ['to'], message: 'to (default: now) must be later than from' });
    else if (days > MAX_RANGE_DAYS) ctx.addIssue({ code: 'custom', path: ['to'], message: `from and to must be at most ${MAX_RANGE_DAYS} days apart (they are ${Math.ceil(days)})` });
  });

const count = () => z.number().int().nonnegative();
const millis = () => z.number().int().nonnegative().nullable();

const RunStatsRowSchema = z
  .strictObject({
    day: z.string().openapi({ description: 'YYYY-MM-DD in `timezone`: the day the runs started on', example: '2026-01-31' }),
    job_name: z.string(),
    runs: z
      .strictObject({
        completed: count(),
        failed: count(),
        started: count().openapi({ description: 'still running (status STARTED)' }),
      })
      .openapi({ description: 'runs that started that day, by status' }),
    duration_ms: z
      .strictObject({ p50: millis(), p95: millis() })
      .openapi({ description: 'median and 95th percentile (interpolated, percentile_cont) of ended_at − started_at over the runs that ended, rounded to the millisecond; null when none ended' }),
    items_processed: count(),
    items_failed: count(),
  })
  .openapi('RunStatsDay') satisfies z.ZodType<RunStatsRow>;

const RunStatsSchema = z
  .strictObject({
    timezone: z.string().openapi({ description: 'SCHEDULER_TIMEZONE: the zone the days are cut in', example: 'America/Sao_Paulo' }),
    from: timestamp(),
    to: timestamp(),
    days: z.array(RunStatsRowSchema).openapi({ description: 'ordered by day, then job; a day on which a job had no run has no row' }),
  })
  .openapi('RunStats');

export const stats = createRoute({
  operationId: 'runStats',
  method: 'get',
  path: '/api/jobs/stats',
  tags,
  summary: 'Run statistics per day and job: counts by status, duration percentiles, items',
  description:
    `The runs (job_logs) that started in [from, to), at most ${MAX_RANGE_DAYS} days (default: the last ${DEFAULT_RANGE_DAYS}), grouped by job and by the day ` +
    'they started on in the service\'s SCHEDULER_TIMEZONE (not each schedule\'s own zone), ordered by day then job. ' +
    'Days on which a job had no run are omitted, and a day at an edge of the range can be partial. ' +
    'The range is read through the index on job_logs.started_at (a range holding most of the table is read whole, which is then cheaper). ' +
    'Each instance keeps the days before today (in that zone) for up to 10 minutes once no run of theirs is still open, and reads today afresh: ' +
    'a change to an earlier day made by hand or by retention can take that long to show.',
  security: BEARER,
  request: { query: StatsQuerySchema },
  responses: {
    200: json(RunStatsSchema, 'the runs of the range, per day and job'),
    ...errors({
      400: `from or to malformed, to not later than from, a range over ${MAX_RANGE_DAYS} days, or a NUL character in job`,
      404: 'unknown job',
    }),
    ...API_ERRORS,
  },
});
