import { describe, expect, it } from 'vitest';
import { CronExpressionParser } from 'cron-parser';
import { CRON_MACROS, cronProblem, nextOccurrence, parserCron, previousOccurrence } from '../src/boss/cron.ts';
import { localTime, previewCron, previewRuns } from '../src/boss/cron-preview.ts';
import { describeCron } from '../src/boss/cron-words.ts';
import { ScheduleInputError } from '../src/boss/schedules.ts';
import { preferredLanguage } from '../src/http/lib/language.ts';

/** Macros, cron in words, the language a request asks for, and previews: pure functions, no database. */

const FIELDS = 'minute hour day-of-month month day-of-week';
const NY = 'America/New_York';

describe('cron macros', () => {
  it.each(CRON_MACROS)('accepts %s', (macro) => {
    expect(cronProblem(macro)).toBeNull();
    expect(cronProblem(`  ${macro} `)).toBeNull();
  });

  it('hands pg-boss every macro as typed but @midnight, which cron-parser lacks and is spelled @daily', () => {
    for (const macro of CRON_MACROS) {
      const expected = macro === '@midnight' ? '@daily' : macro;
      expect(parserCron(macro)).toBe(expected);
      // What pg-boss is given is what the parser it uses reads, in a zone.
      expect(() => CronExpressionParser.parse(parserCron(macro), { tz: NY, currentDate: new Date(), strict: false })).not.toThrow();
    }
    expect(() => CronExpressionParser.parse('@midnight', { tz: 'UTC', strict: false })).toThrow();
    expect(parserCron('30 2 * * *')).toBe('30 2 * * *');
  });

  it.each(['@reboot', '@every 5m', '@minutely', '@weekdays', '@DAILY', '@'])('refuses %j, naming the accepted macros', (word) => {
    expect(cronProblem(word)).toBe(`"${word}" is not a supported macro; use one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually (lowercase), or 5 fields: ${FIELDS}`);
  });

  it('keeps the refusal of 6 fields', () => {
    expect(cronProblem('0 30 2 * * *')).toBe(`"0 30 2 * * *" has 6 fields; seconds are not supported (pg-boss fires a schedule at most once a minute). Use 5 fields: ${FIELDS}`);
  });

  it.each([
    ['@hourly', '2027-03-12T10:20:00Z', '2027-03-12T11:00:00.000Z', '2027-03-12T10:00:00.000Z'],
    ['@daily', '2027-03-12T10:20:00Z', '2027-03-13T05:00:00.000Z', '2027-03-12T05:00:00.000Z'],
    ['@midnight', '2027-03-12T10:20:00Z', '2027-03-13T05:00:00.000Z', '2027-03-12T05:00:00.000Z'],
    // Sunday 2027-03-14 is the spring-forward day: midnight is still EST (-05:00).
    ['@weekly', '2027-03-12T10:20:00Z', '2027-03-14T05:00:00.000Z', '2027-03-07T05:00:00.000Z'],
    ['@monthly', '2027-03-12T10:20:00Z', '2027-04-01T04:00:00.000Z', '2027-03-01T05:00:00.000Z'],
    ['@yearly', '2027-03-12T10:20:00Z', '2028-01-01T05:00:00.000Z', '2027-01-01T05:00:00.000Z'],
    ['@annually', '2027-03-12T10:20:00Z', '2028-01-01T05:00:00.000Z', '2027-01-01T05:00:00.000Z'],
  ])('%s in America/New_York from %s: next %s, previous %s', (macro, from, next, previous) => {
    expect(nextOccurrence(macro, NY, new Date(from)).toISOString()).toBe(next);
    expect(previousOccurrence(macro, NY, new Date(from)).toISOString()).toBe(previous);
  });
});

describe('describeCron', () => {
  it.each([
    ['0 0 * * *', 'At 00:00', 'Às 00:00'],
    ['30 2 * * *', 'At 02:30', 'Às 02:30'],
    ['0 18 * * 1-5', 'At 18:00, Monday through Friday', 'Às 18:00, de segunda-feira a sexta-feira'],
    ['*/15 * * * *', 'Every 15 minutes', 'A cada 15 minutos'],
    ['@daily', 'At 00:00', 'Às 00:00'],
    ['@midnight', 'At 00:00', 'Às 00:00'],
    ['@hourly', 'Every hour', 'A cada hora'],
    ['@weekly', 'At 00:00, only on Sunday', 'Às 00:00, somente de domingo'],
    ['@monthly', 'At 00:00, on day 1 of the month', 'Às 00:00, no dia 1 do mês'],
    ['@yearly', 'At 00:00, on day 1 of the month, only in January', 'Às 00:00, no dia 1 do mês, somente em janeiro'],
    ['@annually', 'At 00:00, on day 1 of the month, only in January', 'Às 00:00, no dia 1 do mês, somente em janeiro'],
  ])('%s: %j / %j', (expression, en, pt) => {
    expect(describeCron(expression, 'en')).toBe(en);
    expect(describeCron(expression, 'pt')).toBe(pt);
  });

  it('says a row edited by hand into an invalid cron cannot run, instead of failing the response', () => {
    expect(describeCron('0 30 2 * * *', 'en')).toMatch(/^not a schedule pg-boss can run: "0 30 2 \* \* \*" has 6 fields/);
    expect(describeCron('@reboot', 'pt')).toMatch(/^não é um agendamento que o pg-boss possa executar: "@reboot" is not a supported macro/);
  });
});

describe('preferredLanguage (Accept-Language)', () => {
  it.each([
    [undefined, 'en'],
    ['', 'en'],
    ['pt', 'pt'],
    ['pt-BR', 'pt'],
    ['pt-PT', 'pt'],
    ['PT-br', 'pt'],
    ['en', 'en'],
    ['en-US,en;q=0.9', 'en'],
    ['fr', 'en'],
    ['de-DE, fr;q=0.8', 'en'],
    ['pt-BR;q=0.9, en;q=0.8', 'pt'],
    ['en, pt;q=0.5', 'en'],
    ['en;q=0.5, pt', 'pt'],
    ['en;q=0.4, pt-BR;q=0.7', 'pt'],
    // The best the API can serve: French is not served, so Portuguese is next.
    ['fr, pt;q=0.5', 'pt'],
    ['pt;q=0, en', 'en'],
    ['pt;q=0', 'en'],
    ['*', 'en'],
    // A malformed q-value drops its entry rather than being guessed at.
    ['pt;q=high, en;q=0.1', 'en'],
    ['pt;q=1.5', 'en'],
    ['pt-BR ; q=0.8 , en ; q=0.7', 'pt'],
  ])('%j → %s', (header, language) => {
    expect(preferredLanguage(header)).toBe(language);
  });
});

describe('preview', () => {
  it('writes the local wall time with its offset, by the zone database', () => {
    expect(localTime(new Date('2027-03-14T07:30:00Z'), NY)).toBe('2027-03-14T03:30:00-04:00');
    expect(localTime(new Date('2027-03-13T07:30:00Z'), NY)).toBe('2027-03-13T02:30:00-05:00');
    expect(localTime(new Date('2027-03-13T07:30:00Z'), 'UTC')).toBe('2027-03-13T07:30:00+00:00');
    expect(localTime(new Date('2027-03-13T07:30:00Z'), 'Asia/Kolkata')).toBe('2027-03-13T13:00:00+05:30');
    expect(localTime(new Date('2027-03-13T23:59:59Z'), 'America/Sao_Paulo')).toBe('2027-03-13T20:59:59-03:00');
  });

  it('spring forward: 02:30 daily runs once on 2027-03-14, at 03:30 EDT', () => {
    const { runs, truncated_note } = previewRuns('30 2 * * *', NY, new Date('2027-03-12T00:00:00Z'), 4);
    expect(truncated_note).toBeUndefined();
    expect(runs).toEqual([
      { at: '2027-03-12T07:30:00.000Z', local: '2027-03-12T02:30:00-05:00' },
      { at: '2027-03-13T07:30:00.000Z', local: '2027-03-13T02:30:00-05:00' },
      { at: '2027-03-14T07:30:00.000Z', local: '2027-03-14T03:30:00-04:00' },
      { at: '2027-03-15T06:30:00.000Z', local: '2027-03-15T02:30:00-04:00' },
    ]);
  });

  it('fall back: 01:30 daily runs once on 2027-11-07, the first time (EDT)', () => {
    const { runs } = previewRuns('30 1 * * *', NY, new Date('2027-11-05T00:00:00Z'), 4);
    expect(runs.map((run) => run.local)).toEqual(['2027-11-05T01:30:00-04:00', '2027-11-06T01:30:00-04:00', '2027-11-07T01:30:00-04:00', '2027-11-08T01:30:00-05:00']);
    expect(runs[2]!.at).toBe('2027-11-07T05:30:00.000Z');
  });

  it('lists occurrences strictly after `from`', () => {
    expect(previewRuns('0 * * * *', 'UTC', new Date('2027-01-01T10:00:00Z'), 2).runs.map((run) => run.at)).toEqual(['2027-01-01T11:00:00.000Z', '2027-01-01T12:00:00.000Z']);
  });

  it('a walk past its time budget stops with what it has and says so (at least one run)', () => {
    const preview = previewRuns('0 0 29 2 *', 'UTC', new Date('2027-01-01T00:00:00Z'), 100, 0);
    expect(preview.runs).toEqual([{ at: '2028-02-29T00:00:00.000Z', local: '2028-02-29T00:00:00+00:00' }]);
    expect(preview.truncated_note).toBe('stopped after 0 ms with 1 of 100 runs (a sparse schedule): ask again with from = the last run');
  });

  it('lists nothing past the year 9999', () => {
    const preview = previewRuns('0 0 * * *', 'UTC', new Date('9999-12-29T12:00:00Z'), 5);
    expect(preview.runs.map((run) => run.at)).toEqual(['9999-12-30T00:00:00.000Z', '9999-12-31T00:00:00.000Z']);
    expect(preview.truncated_note).toBe('no runs listed after the year 9999');
  });

  it('refuses what a PUT refuses, with the same messages', () => {
    const input = { timezone: 'UTC', from: new Date('2027-01-01T00:00:00Z'), count: 1 };
    expect(() => previewCron({ ...input, cron_expression: '0 30 2 * * *' })).toThrow(new ScheduleInputError(cronProblem('0 30 2 * * *')!));
    expect(() => previewCron({ ...input, cron_expression: '@reboot' })).toThrow(ScheduleInputError);
    expect(() => previewCron({ ...input, cron_expression: '0 0 * * *', timezone: 'Mars/Olympus' })).toThrow('"Mars/Olympus" is not a valid IANA time zone');
    expect(previewCron({ ...input, cron_expression: ' @midnight ' })).toEqual({ cron_expression: '@midnight', timezone: 'UTC', runs: [{ at: '2027-01-02T00:00:00.000Z', local: '2027-01-02T00:00:00+00:00' }] });
  });
});
