import type { Metrics } from '../../../metrics/registry.ts';
import { createRouter } from '../../lib/create-router.ts';
import * as routes from './metrics.routes.ts';

export function metricsRouter({ metrics }: { metrics: Pick<Metrics, 'scrape' | 'contentType'> }) {
  return createRouter().openapi(routes.scrape, async (c) => c.text(await metrics.scrape(), 200, { 'Content-Type': metrics.contentType }));
}
