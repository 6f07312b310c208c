import { describe, expect, it } from 'vitest';
import { LISTED_FAILURES, listedFailures, summarizeFailures } from '../src/jobs/failures.ts';

/** The summary and list a run's log keeps of its failed items (pure functions, no database). */

const failure = (id: number, reason: string) => ({ item: { harvest_item_id: id }, reason });

describe('summarizeFailures', () => {
  it('counts each reason, the most common first; equally common ones in the order they happened', () => {
    const failures = [failure(1, 'B'), failure(2, 'A'), failure(3, 'A'), failure(4, 'C'), failure(5, 'B'), failure(6, 'A')];
    expect(summarizeFailures('topics', 6, 9, failures)).toBe('6 of 9 topics failed: A (3); B (2); C (1)');
  });

  it('stays bounded however many reasons there are, and says how many it left out', () => {
    const failures = Array.from({ length: 200 }, (_, i) => failure(i, `reason number ${i} `.padEnd(120, 'x')));
    const summary = summarizeFailures('harvest items', 200, 200, failures);
    expect(summary.length).toBeLessThanOrEqual(1_000 + 30);
    expect(summary).toMatch(/^200 of 200 harvest items failed: reason number 0 x+ \(1\); /);
    const shown = summary.match(/\(1\)/g)!.length;
    expect(summary).toMatch(new RegExp(`; ${200 - shown} other reasons$`));
  });

  it('clips one very long reason instead of dropping it', () => {
    const summary = summarizeFailures('items', 1, 1, [failure(1, 'y'.repeat(5_000))]);
    expect(summary.length).toBeLessThan(400);
    expect(summary).toMatch(/^1 of 1 items failed: y+… \(1\)$/);
  });

  it('without the failures themselves, still gives the count', () => {
    expect(summarizeFailures('items', 2, 5, [])).toBe('2 of 5 items failed');
  });
});

describe('listedFailures', () => {
  it(`keeps the first ${LISTED_FAILURES}, in order, each reason bounded`, () => {
    const failures = Array.from({ length: 80 }, (_, i) => failure(i, i === 0 ? 'z'.repeat(1_000) : `r${i}`));
    const listed = listedFailures(failures);
    expect(listed).toHaveLength(LISTED_FAILURES);
    expect(listed.map((f) => f.item.harvest_item_id)).toEqual(Array.from({ length: LISTED_FAILURES }, (_, i) => i));
    expect(listed[0]!.reason.length).toBe(300);
    expect(listed[1]).toEqual(failure(1, 'r1'));
  });
});
