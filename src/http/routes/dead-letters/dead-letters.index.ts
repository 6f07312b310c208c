import type { AppDeps } from '../../app.ts';
import { createRouter } from '../../lib/create-router.ts';
import { deadLetterHandlers } from './dead-letters.handlers.ts';
import * as routes from './dead-letters.routes.ts';

export function deadLettersRouter(deps: AppDeps) {
  const handlers = deadLetterHandlers(deps);
  return createRouter().openapi(routes.list, handlers.list).openapi(routes.retryMatching, handlers.retryMatching).openapi(routes.retry, handlers.retry);
}
