import pLimit from 'p-limit';

/**
 * Runs `work` over `items`, at most `concurrency` at a time. The first error stops new items from
 * starting; the ones in flight are aborted through the signal and awaited, so nothing is still
 * writing when the error reaches the caller.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const combined = AbortSignal.any([signal, stop.signal]);
  const limit = pLimit(concurrency);
  let firstError: unknown;
  await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        combined.throwIfAborted();
        await work(item, combined);
      }).catch((error) => {
        firstError ??= error;
        stop.abort(error);
      }),
    ),
  );
  if (firstError !== undefined) throw signal.aborted ? signal.reason : firstError;
}
