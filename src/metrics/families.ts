import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * Short forms of prom-client's constructors for a family on one registry (never the global one).
 * Counter names end in `_total`; histograms name their base unit.
 */
export const counter = <L extends string>(registry: Registry, name: `${string}_total`, help: string, labelNames: readonly L[]) =>
  new Counter<L>({ name, help, labelNames, registers: [registry] });

export const histogram = <L extends string>(registry: Registry, name: `${string}_seconds`, help: string, labelNames: readonly L[], buckets: number[]) =>
  new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });
