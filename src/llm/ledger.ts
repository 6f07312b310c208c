import type { NewLlmCall } from '../db/llm-calls.ts';
import type { Logger } from '../logger.ts';

/**
 * The ledger's buffer: every HTTP attempt to the model becomes a record here (a push, nothing
 * more on the call's path), written in one multi-row insert every FLUSH_RECORDS records or
 * FLUSH_MS, and when a run ends (the runner flushes before it closes its logs). A process that
 * crashes loses at most the records of the last FLUSH_MS. A failed write is logged and its records
 * kept for the next flush: the ledger never fails a run.
 */

/** One HTTP attempt as the ledger stores it (a row of llm_calls). */
export type LedgerRecord = NewLlmCall;
/** ok, retry (a retry follows), bad_output, error (refused, unavailable, or retries spent), aborted. */
export type LedgerOutcome = NewLlmCall['outcome'];

export type LedgerSink = {
  record(record: LedgerRecord): void;
  /** Writes what is buffered; resolves once written or, on failure, logged (never rejects). */
  flush(): Promise<void>;
};

export const FLUSH_RECORDS = 50;
export const FLUSH_MS = 2_000;
/** Beyond this many unwritten records (the database down for long), the oldest are dropped, said in the log. */
const MAX_BUFFERED = 50_000;

export function createLedger({ write, logger }: { write(records: LedgerRecord[]): Promise<void>; logger: Logger }): LedgerSink {
  let buffer: LedgerRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  // One write at a time, in order: a flush waits for the one before it.
  let writing: Promise<void> = Promise.resolve();

  function flush(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = undefined;
    writing = writing.then(async () => {
      if (buffer.length === 0) return;
      const records = buffer;
      buffer = [];
      try {
        await write(records);
      } catch (error) {
        // Kept, in front of the newer ones, for the next flush.
        buffer = records.concat(buffer);
        const dropped = buffer.length - MAX_BUFFERED;
        if (dropped > 0) buffer.splice(0, dropped);
        logger.error({ err: error, records: records.length, dropped: Math.max(0, dropped) }, `could not write ${records.length} LLM ledger records; retrying at the next flush`);
        schedule();
      }
    });
    return writing;
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(() => void flush(), FLUSH_MS);
    // A pending flush does not keep the process alive; runs flush as they end.
    timer.unref();
  }

  return {
    record(record) {
      buffer.push(record);
      if (buffer.length >= FLUSH_RECORDS) void flush();
      else schedule();
    },
    flush,
  };
}
