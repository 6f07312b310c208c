import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createEvents } from '../src/events.ts';
import { createLogger } from '../src/logger.ts';

/** The event seam itself: typed, in order, and a failing listener never breaks the emitter. */

function loggerWithLines() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

const schedule = { job: 'j', source: 'api', cron: '* * * * *', timezone: 'UTC', active: true } as const;

describe('createEvents', () => {
  it('calls each listener of an event, in the order they were added, until removed', () => {
    const events = createEvents(createLogger('silent'));
    const calls: string[] = [];
    const offA = events.on('schedule:changed', (e) => void calls.push(`a:${e.job}`));
    events.on('schedule:changed', (e) => void calls.push(`b:${e.job}`));
    events.on('run:reaped', () => void calls.push('reaped'));
    events.emit('schedule:changed', schedule);
    offA();
    events.emit('schedule:changed', { ...schedule, job: 'k' });
    expect(calls).toEqual(['a:j', 'b:j', 'b:k']);
  });

  it('a listener that throws, or rejects, is logged with the event name; the others still run and emit returns', async () => {
    const { logger, lines } = loggerWithLines();
    const events = createEvents(logger);
    const calls: string[] = [];
    events.on('schedule:changed', () => {
      throw new Error('listener broke');
    });
    events.on('schedule:changed', async () => {
      throw new Error('async listener broke');
    });
    events.on('schedule:changed', () => void calls.push('after'));
    expect(() => events.emit('schedule:changed', schedule)).not.toThrow();
    expect(calls).toEqual(['after']);
    await new Promise((resolve) => setImmediate(resolve));
    const failures = lines.filter((l) => l.event === 'schedule:changed' && l.level === 50);
    expect(failures.map((l) => (l.err as { message: string }).message).sort()).toEqual(['async listener broke', 'listener broke']);
    expect(failures[0]!.msg).toBe('a listener of schedule:changed failed; the event went on');
  });

  it('two seams are independent (no global emitter)', () => {
    const one = createEvents(createLogger('silent'));
    const two = createEvents(createLogger('silent'));
    let heard = 0;
    two.on('schedule:changed', () => void (heard += 1));
    one.emit('schedule:changed', schedule);
    expect(heard).toBe(0);
  });
});
