import type { RouteHandler } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { previewSchedule, SavedScheduleInvalidError } from '../../../boss/cron-preview.ts';
import { pausedNote, withDescription } from '../../../boss/cron-words.ts';
import { listSchedules, type ScheduleActor, ScheduleInputError, scheduleOf, updateSchedule } from '../../../boss/schedules.ts';
import { listScheduleChanges } from '../../../db/schedule-changes.ts';
import type { AppDeps } from '../../app.ts';
import { knownJobOf } from '../../known-job.ts';
import { negotiateLanguage } from '../../lib/language.ts';
import type * as routes from './schedules.routes.ts';

/** Who a write is recorded as: the token it came with, or `none` when the API runs without auth (the read-only token never writes). */
const actorOf = (c: Context): ScheduleActor => (c.get('tokenRole') === 'api_token' ? 'api_token' : 'none');

export function scheduleHandlers(deps: AppDeps) {
  const knownJob = knownJobOf(deps.registry);

  const list: RouteHandler<typeof routes.list> = async (c) => {
    const language = negotiateLanguage(c);
    return c.json((await listSchedules(deps.db)).map((row) => withDescription(row, language)), 200);
  };

  const get: RouteHandler<typeof routes.get> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    const row = await scheduleOf(deps.db, name);
    if (!row) return c.json({ error: `no schedule for job "${name}"` }, 404);
    return c.json(withDescription(row, negotiateLanguage(c)), 200);
  };

  const update: RouteHandler<typeof routes.update> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    try {
      const row = await updateSchedule(deps, name, c.req.valid('json'), actorOf(c));
      return c.json(withDescription(row, negotiateLanguage(c)), 200);
    } catch (error) {
      if (error instanceof ScheduleInputError) return c.json({ error: error.message }, 400);
      throw error;
    }
  };

  const preview: RouteHandler<typeof routes.preview> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    const { count, from } = c.req.valid('query');
    try {
      const found = await previewSchedule(deps.db, name, { count, from: from ? new Date(from) : new Date() });
      if (!found) return c.json({ error: `no schedule for job "${name}"` }, 404);
      const language = negotiateLanguage(c);
      const { job_name, cron_expression, timezone, is_active, runs, truncated_note } = found;
      const notes = { ...(!is_active && { paused_note: pausedNote(language) }), ...(truncated_note && { truncated_note }) };
      return c.json({ ...withDescription({ job_name, cron_expression, timezone, is_active }, language), ...notes, runs }, 200);
    } catch (error) {
      if (error instanceof SavedScheduleInvalidError) return c.json({ error: error.message }, 409);
      throw error;
    }
  };

  const history: RouteHandler<typeof routes.history> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    return c.json(await listScheduleChanges(deps.db, name, c.req.valid('query')), 200);
  };

  return { list, get, update, preview, history };
}
