import { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { SchedulerEventMap } from '../events.ts';

export type ProgressBar = {
  /** Where the CLI's log lines go: printed above the bar while it shows, else straight to stderr. */
  logs: Writable;
  /** Feed it the run's `run:progress` events. */
  update(event: SchedulerEventMap['run:progress']): void;
  /** Removes the bar (before the summary line); safe to call twice. */
  stop(): void;
};

/**
 * A bar of the run's items on a terminal (`12/40 items · 1 failed`); null when stdout is not a
 * terminal, where plain log lines are the progress and nothing redraws.
 */
export function createProgressBar(itemNoun: string, out: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): ProgressBar | null {
  if (!out.isTTY) return null;
  const bars = new cliProgress.MultiBar(
    { stream: out, format: `{bar} {value}/{total} ${itemNoun} · {failed} failed · {duration_formatted}`, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  // A log line written under a live bar would be drawn over; on the same terminal it goes above it.
  const logsAboveBar = Boolean(err.isTTY);
  return {
    logs: new Writable({
      write(chunk, _encoding, done) {
        if (bar && logsAboveBar) bars.log(String(chunk));
        else err.write(chunk);
        done();
      },
    }),
    update({ itemsTotal, itemsProcessed, itemsFailed }) {
      if (!bar) bar = bars.create(itemsTotal, 0, { failed: 0 });
      bar.setTotal(itemsTotal);
      bar.update(itemsProcessed + itemsFailed, { failed: itemsFailed });
    },
    stop() {
      if (!bar) return;
      bars.stop();
      bar = undefined;
    },
  };
}
