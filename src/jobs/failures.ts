import { ConfigurationError } from '../errors.ts';
import type { ItemFailure } from './job.ts';

/** A configuration error found through a run's items: the log lists them like any item failures. */
export class ItemsConfigurationError extends ConfigurationError {
  readonly failures: readonly ItemFailure[];
  constructor(message: string, variables: readonly string[], failures: readonly ItemFailure[]) {
    super(message, variables);
    this.failures = failures;
  }
}

/** How many failed items a run's log lists one by one; the summary counts them all. */
export const LISTED_FAILURES = 50;
/** error_message stays readable in a table cell and a log line. */
const SUMMARY_MAX_CHARS = 1000;
const REASON_MAX_CHARS = 300;

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/**
 * A run's item failures in one line, the most common reasons first, bounded in length:
 * `9 of 9 topics failed: LLM error 400: Invalid schema (7); model refused: … (2)`.
 */
export function summarizeFailures(noun: string, failed: number, total: number, failures: readonly ItemFailure[]): string {
  const counts = new Map<string, number>();
  for (const { reason } of failures) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  // A stable sort: equally common reasons keep the order they first happened in.
  const reasons = [...counts].sort((a, b) => b[1] - a[1]);
  let summary = `${failed} of ${total} ${noun} failed`;
  for (const [i, [reason, n]] of reasons.entries()) {
    const part = `${i === 0 ? ': ' : '; '}${clip(reason, REASON_MAX_CHARS)} (${n})`;
    const rest = reasons.length - i;
    if (summary.length + part.length > SUMMARY_MAX_CHARS) return `${summary}; ${rest} other reason${rest === 1 ? '' : 's'}`;
    summary += part;
  }
  return summary;
}

/** What a run's log keeps of its failed items: the first few, and how many there were. */
export function failuresMetadata(failures: readonly ItemFailure[]): { failures: ItemFailure[]; failures_total: number } | undefined {
  return failures.length > 0 ? { failures: listedFailures(failures), failures_total: failures.length } : undefined;
}

/** The failures a log lists: the first LISTED_FAILURES, each reason bounded. */
export function listedFailures(failures: readonly ItemFailure[]): ItemFailure[] {
  return failures.slice(0, LISTED_FAILURES).map(({ item, reason }) => ({ item, reason: clip(reason, REASON_MAX_CHARS) }));
}
