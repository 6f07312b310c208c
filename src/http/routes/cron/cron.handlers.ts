import type { RouteHandler } from '@hono/zod-openapi';
import { previewCron } from '../../../boss/cron-preview.ts';
import { withDescription } from '../../../boss/cron-words.ts';
import { ScheduleInputError } from '../../../boss/schedules.ts';
import type { AppDeps } from '../../app.ts';
import { negotiateLanguage } from '../../lib/language.ts';
import type * as routes from './cron.routes.ts';

export function cronHandlers(deps: Pick<AppDeps, 'defaultTimeZone'>) {
  const preview: RouteHandler<typeof routes.preview> = async (c) => {
    const { cron_expression, timezone, count, from } = c.req.valid('query');
    try {
      const result = previewCron({ cron_expression, timezone: timezone ?? deps.defaultTimeZone, count, from: from ? new Date(from) : new Date() });
      return c.json(withDescription(result, negotiateLanguage(c)), 200);
    } catch (error) {
      if (error instanceof ScheduleInputError) return c.json({ error: error.message }, 400);
      throw error;
    }
  };

  return { preview };
}
