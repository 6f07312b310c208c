import cronstrue from 'cronstrue';
// Registers the pt_BR locale with cronstrue (the package has no exports map, hence the .js).
import 'cronstrue/locales/pt_BR.js';
import { cronProblem } from './cron.ts';

/** The languages a schedule can be described in. */
export const LANGUAGES = ['en', 'pt'] as const;
export type Language = (typeof LANGUAGES)[number];

/** The `Content-Language` of a response in each language. */
export const CONTENT_LANGUAGE: Record<Language, string> = { en: 'en', pt: 'pt-BR' };

const CRONSTRUE_LOCALE: Record<Language, string> = { en: 'en', pt: 'pt_BR' };

const CANNOT_DESCRIBE: Record<Language, (problem: string) => string> = {
  en: (problem) => `not a schedule pg-boss can run: ${problem}`,
  pt: (problem) => `não é um agendamento que o pg-boss possa executar: ${problem}`,
};

/**
 * A cron expression (macros included) in plain words, 24-hour clock: `0 0 * * *` is "At 00:00" /
 * "Às 00:00". A row edited by hand into something invalid still gets a sentence, saying so.
 */
export function describeCron(expression: string, language: Language): string {
  const problem = cronProblem(expression);
  if (problem) return CANNOT_DESCRIBE[language](problem);
  try {
    return cronstrue.toString(expression.trim(), { locale: CRONSTRUE_LOCALE[language], use24HourTimeFormat: true });
  } catch (error) {
    return CANNOT_DESCRIBE[language](String(error));
  }
}

/** The row with its `description` added, as every response that carries a schedule sends it. */
export function withDescription<T extends { cron_expression: string }>(row: T, language: Language): T & { description: string } {
  return { ...row, description: describeCron(row.cron_expression, language) };
}

const PAUSED_NOTE: Record<Language, string> = {
  en: 'this schedule is paused: nothing runs until it is active again; these are the runs it would make',
  pt: 'este agendamento está pausado: nada é executado até que seja reativado; estas são as execuções que ele faria',
};

/** What a preview of a paused schedule says about its runs. */
export const pausedNote = (language: Language): string => PAUSED_NOTE[language];
