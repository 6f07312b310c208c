import { describe, expect, it } from 'vitest';
import { createLedger, FLUSH_RECORDS, type LedgerRecord } from '../src/llm/ledger.ts';
import { createLogger } from '../src/logger.ts';
import { Writable } from 'node:stream';

/** The ledger's buffer as pure code: batches, and a write that fails is kept for the next flush. */

const record = (n: number): LedgerRecord => ({
  at: n, log_id: 1, job_name: 'j', item: { harvest_item_id: n }, model: 'm', prompt_version: 'v', prompt_tokens: 1,
  cached_prompt_tokens: 0, completion_tokens: 1, latency_ms: 1, outcome: 'ok', http_status: 200, cost_usd: null,
});

function quietLogger() {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } });
  return { logger: createLogger('info', sink), lines };
}

describe('ledger buffer', () => {
  it('writes in batches of FLUSH_RECORDS, and the rest at flush', async () => {
    const writes: number[][] = [];
    const ledger = createLedger({ write: async (records) => void writes.push(records.map((r) => r.at)), logger: quietLogger().logger });
    for (let i = 0; i < FLUSH_RECORDS; i++) ledger.record(record(i));
    // The FLUSH_RECORDS-th record starts a write by itself (no timer, no explicit flush).
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes.map((w) => w.length)).toEqual([FLUSH_RECORDS]);
    for (let i = FLUSH_RECORDS; i < FLUSH_RECORDS + 3; i++) ledger.record(record(i));
    await ledger.flush();
    expect(writes.map((w) => w.length)).toEqual([FLUSH_RECORDS, 3]);
    expect(writes.flat()).toEqual(Array.from({ length: FLUSH_RECORDS + 3 }, (_, i) => i));
  });

  it('a failed write is logged, never thrown, and its records go out with the next flush, in order', async () => {
    const writes: number[][] = [];
    let fail = true;
    const { logger, lines } = quietLogger();
    const ledger = createLedger({
      write: async (records) => {
        if (fail) throw new Error('database down');
        writes.push(records.map((r) => r.at));
      },
      logger,
    });
    ledger.record(record(1));
    ledger.record(record(2));
    await expect(ledger.flush()).resolves.toBeUndefined();
    expect(lines.join('')).toContain('could not write 2 LLM ledger records');
    fail = false;
    ledger.record(record(3));
    await ledger.flush();
    expect(writes).toEqual([[1, 2, 3]]);
  });
});
