import type { Db } from '../../../db/client.ts';
import { createRouter } from '../../lib/create-router.ts';
import { llmHandlers } from './llm.handlers.ts';
import * as routes from './llm.routes.ts';

export function llmRouter(deps: { db: Db }) {
  const handlers = llmHandlers(deps);
  return createRouter().openapi(routes.usage, handlers.usage).openapi(routes.prompts, handlers.prompts);
}
