import { ItemsConfigurationError, summarizeFailures } from './failures.ts';
import type { ItemFailure } from './job.ts';
import type { LlmItemError } from '../llm/openai.ts';

/**
 * The items a run could not do. Item failures do not fail a run (the seed's rule), with one
 * exception: when at least two items were tried, none succeeded, and every one was refused by the
 * model server with the same 4xx answer, the requests themselves are wrong (a model without
 * Structured Outputs, a proxy refusing the format…), not the items. That run fails as a
 * configuration error: not retried, and its items stay PENDING for when the setting is fixed. One
 * item alone, or differing answers (e.g. a context-length error naming each item's size), stay item
 * failures.
 */
export class ItemFailures {
  readonly #failures: Array<{ failure: ItemFailure; status: number | undefined }> = [];

  add(item: ItemFailure['item'], error: LlmItemError): void {
    this.#failures.push({ failure: { item, reason: error.message }, status: error.status });
  }

  get count(): number {
    return this.#failures.length;
  }

  list(): ItemFailure[] {
    return this.#failures.map(({ failure }) => failure);
  }

  /** The ConfigurationError described above, when this run's failures amount to one; else null. */
  configurationError(succeeded: number, noun: string): ItemsConfigurationError | null {
    const [first] = this.#failures;
    if (succeeded > 0 || this.#failures.length < 2 || !first) return null;
    const rejected = (status: number | undefined) => status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
    const same = this.#failures.every(({ failure, status }) => rejected(status) && failure.reason === first.failure.reason);
    if (!same) return null;
    const failures = this.list();
    return new ItemsConfigurationError(
      `${summarizeFailures(noun, failures.length, failures.length, failures)}: the model server refuses the requests, not the items; ` +
        'check OPENAI_MODEL (it must support Structured Outputs) and OPENAI_BASE_URL',
      ['OPENAI_MODEL', 'OPENAI_BASE_URL'],
      failures,
    );
  }
}
