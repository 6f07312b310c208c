import type { RouteHandler } from '@hono/zod-openapi';
import type { Db } from '../../../db/client.ts';
import { llmUsageReport } from '../../../db/llm-calls.ts';
import { listPrompts } from '../../../jobs/prompts.ts';
import type * as routes from './llm.routes.ts';

export function llmHandlers({ db }: { db: Db }) {
  const usage: RouteHandler<typeof routes.usage> = async (c) => c.json(await llmUsageReport(db, c.req.valid('query')), 200);
  const prompts: RouteHandler<typeof routes.prompts> = async (c) => c.json(await listPrompts(db), 200);
  return { usage, prompts };
}
