import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { CONTENT_LANGUAGE, type Language } from '../../boss/cron-words.ts';

/**
 * Accept-Language, as far as this API speaks: `pt` (any region: pt, pt-BR, pt-PT) or English, the
 * default. The highest q-value the API can serve wins; equal q-values go by order; q=0 means "not that".
 */
export function preferredLanguage(header: string | undefined): Language {
  let best: { language: Language; q: number } | undefined;
  for (const entry of (header ?? '').split(',')) {
    const [tag = '', ...params] = entry.split(';').map((part) => part.trim());
    const language = servedLanguage(tag.toLowerCase());
    const q = qValue(params);
    if (!language || q === null || q === 0) continue;
    if (!best || q > best.q) best = { language, q };
  }
  return best?.language ?? 'en';
}

function servedLanguage(tag: string): Language | null {
  const primary = tag.split('-')[0];
  if (primary === 'pt') return 'pt';
  if (primary === 'en' || primary === '*') return 'en';
  return null;
}

/** The entry's q (1 when absent), or null when it is malformed, so the entry is ignored rather than guessed at. */
function qValue(params: string[]): number | null {
  const q = params.find((param) => /^q\s*=/i.test(param));
  if (q === undefined) return 1;
  const value = q.replace(/^q\s*=\s*/i, '');
  return /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(value) ? Number(value) : null;
}

/** The request's language; the response says which one it is in, and that it varies with Accept-Language. */
export function negotiateLanguage(c: Context): Language {
  const language = preferredLanguage(c.req.header('accept-language'));
  c.header('Content-Language', CONTENT_LANGUAGE[language]);
  c.header('Vary', 'Accept-Language', { append: true });
  return language;
}

/** The request header of routes that answer with schedules in words. Never refused: what it cannot read gives English. */
export const AcceptLanguageHeaderSchema = z.object({
  'accept-language': z.string().optional().openapi({
    description: 'the language of `description`: Portuguese for `pt`, `pt-BR`, `pt-PT` (by q-value), English otherwise',
    example: 'pt-BR,pt;q=0.9,en;q=0.8',
  }),
});

/** The response headers of those routes. */
export const LanguageHeadersSchema = z.object({
  'Content-Language': z.string().openapi({ description: '`en` or `pt-BR`: the language of `description`' }),
  Vary: z.string().openapi({ description: 'includes `Accept-Language`' }),
});
