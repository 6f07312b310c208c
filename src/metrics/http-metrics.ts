import type { Registry } from 'prom-client';
import { histogram } from './families.ts';

/** 1 ms … 10 s: a health check to a slow list. */
export const HTTP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Route patterns beyond this many distinct ones are counted as `other`. The caller passes the
 * matched pattern (`/api/jobs/run/:job`), never the raw path, so this only guards against a caller
 * that gets that wrong: a label per URL would grow without bound.
 */
const MAX_ROUTES = 100;

export type ObserveHttpRequest = (method: string, routePattern: string, status: number, seconds: number) => void;

/**
 * `scheduler_http_request_duration_seconds{method,route,status}`, fed by the HTTP layer (this
 * module knows no framework). Returns the function it calls once per answered request.
 */
export function registerHttpMetrics(registry: Registry): ObserveHttpRequest {
  const duration = histogram(registry, 'scheduler_http_request_duration_seconds', 'How long this instance took to answer HTTP requests, by method, route pattern and status code.', ['method', 'route', 'status'], HTTP_DURATION_BUCKETS);
  const routes = new Set<string>();
  return (method, routePattern, status, seconds) => {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    const upper = method.toUpperCase();
    let route = routePattern || 'unmatched';
    if (!routes.has(route)) {
      if (routes.size < MAX_ROUTES) routes.add(route);
      else route = 'other';
    }
    duration.observe(
      {
        method: METHODS.has(upper) ? upper : 'OTHER',
        route,
        status: Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'unknown',
      },
      seconds,
    );
  };
}
