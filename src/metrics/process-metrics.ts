import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's gauges named `_total`, which Prometheus reserves for counters (`promtool check
 * metrics` rejects them). Each is the sum of a gauge kept beside it: `sum(nodejs_active_handles)`
 * and so on give the same number.
 */
const GAUGES_NAMED_LIKE_COUNTERS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** prom-client's default process and Node.js metrics (CPU, memory, file descriptors, event loop lag, GC) on `registry`. */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of GAUGES_NAMED_LIKE_COUNTERS) registry.removeSingleMetric(name);
}
