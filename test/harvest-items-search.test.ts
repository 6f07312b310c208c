import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError, type Json } from './support/http.ts';
import { createItem } from './support/pipeline.ts';
import { startTestService, type TestService } from './support/service.ts';

/** GET /api/harvest-items?q: the words of the title, each as the start of a title word. */

const TITLES = ['Edital TRT 2ª Região — Analista Judiciário', 'Edital TRF 3ª Região — Técnico', 'Concurso Prefeitura de São Paulo: Auditor-Fiscal', 'Edital TRT 15ª Região — Técnico Judiciário'];

describe('searching harvest items by title', () => {
  let t: TestService;
  const ids: Record<string, number> = {};
  beforeAll(async () => {
    t = await startTestService({ ROLE: 'api' });
    for (const title of TITLES) ids[title] = (await createItem(t, { title, content: `Conteúdo de ${title}` })).id;
    // One of them failed, to combine the search with a status.
    await t.service.database.pool.query(`update harvest_items set status = 'BLUEPRINT_ERROR', error_message = 'no topics' where id = $1`, [ids[TITLES[3]!]]);
  });
  afterAll(() => t?.stop());

  const search = async (query: string): Promise<string[]> => {
    const res = await call(t, `/api/harvest-items?${query}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.map((item: Json) => item.title);
  };

  it('finds titles with every word, each as a word\'s start, case-insensitive, newest first', async () => {
    expect(await search('q=edital%20trt')).toEqual([TITLES[3], TITLES[0]]);
    expect(await search('q=EDIT')).toEqual([TITLES[3], TITLES[1], TITLES[0]]);
    expect(await search('q=judic%20analis')).toEqual([TITLES[0]]);
    expect(await search(`q=${encodeURIComponent('são paulo')}`)).toEqual([TITLES[2]]);
    expect(await search('q=fiscal')).toEqual([TITLES[2]]);
    expect(await search('q=regiao')).toEqual([]); // accents as written: "Região" is not "regiao"
    expect(await search('q=tribunal')).toEqual([]);
  });

  it('combines with status and pages', async () => {
    expect(await search('q=edital&status=BLUEPRINT_ERROR')).toEqual([TITLES[3]]);
    expect(await search('q=edital&status=PENDING')).toEqual([TITLES[1], TITLES[0]]);
    expect(await search('q=edital&limit=1&offset=1')).toEqual([TITLES[1]]);
  });

  it('treats what a tsquery would parse as plain text: operators and quotes are only separators', async () => {
    expect(await search(`q=${encodeURIComponent("trt & !técnico | 'x':* (")}`)).toEqual([]);
    expect(await search(`q=${encodeURIComponent("trt:* & (técnico)")}`)).toEqual([TITLES[3]]);
  });

  it('refuses a q with no word, too long, or with NUL, with 400 naming q', async () => {
    expectError(await call(t, `/api/harvest-items?q=${encodeURIComponent('&|!:*')}`), 400, /q: q must contain a word/);
    expectError(await call(t, `/api/harvest-items?q=${'a'.repeat(201)}`), 400, /q: q must be at most 200 characters/);
    expectError(await call(t, '/api/harvest-items?q=a%00b'), 400, /q: must not contain NUL/);
  });
});
