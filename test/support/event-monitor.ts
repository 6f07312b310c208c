import type { SchedulerEventMap, SchedulerEventName, SchedulerEvents } from '../../src/events.ts';

const NAMES: SchedulerEventName[] = ['run:start', 'run:progress', 'run:end', 'run:reaped', 'llm:call', 'schedule:changed'];

/**
 * Everything a service emits, recorded from the moment it is made (graphile-worker's EventMonitor):
 * tests wait on events instead of grepping log lines.
 */
export class EventMonitor {
  readonly seen: Array<{ [K in SchedulerEventName]: { name: K; event: SchedulerEventMap[K] } }[SchedulerEventName]> = [];
  readonly #waiters = new Set<() => void>();

  constructor(events: SchedulerEvents) {
    for (const name of NAMES) {
      events.on(name, (event) => {
        this.seen.push({ name, event } as (typeof this.seen)[number]);
        for (const wake of this.#waiters) wake();
      });
    }
  }

  /** The recorded events of one kind, oldest first. */
  of<K extends SchedulerEventName>(name: K): Array<SchedulerEventMap[K]> {
    return this.seen.filter((e) => e.name === name).map((e) => e.event as SchedulerEventMap[K]);
  }

  /** The first event of that kind (already seen or still to come) that matches. */
  next<K extends SchedulerEventName>(name: K, matches: (event: SchedulerEventMap[K]) => boolean = () => true, timeoutMs = 15_000): Promise<SchedulerEventMap[K]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.of(name).find(matches);
        if (!found) return false;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${name} event matched within ${timeoutMs} ms (seen: ${this.of(name).length})`));
      }, timeoutMs);
      if (!check()) this.#waiters.add(check);
    });
  }
}
