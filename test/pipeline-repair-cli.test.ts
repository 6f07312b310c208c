import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScript } from '../testkit/processes.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';

/** `npm run items:retry-failed` and `npm run drops:regenerate`, as real processes on a database of their own. */

describe('pipeline repair commands (real process)', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const query = async (text: string, values: unknown[] = []) => (await client.query(text, values)).rows;

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('items:retry-failed sends every BLUEPRINT_ERROR item back to PENDING and names them', async () => {
    const rows = await query(
      `insert into harvest_items (title, content, status, error_message) values
       ('a', 'c', 'BLUEPRINT_ERROR', 'refused'), ('b', 'c', 'BLUEPRINT_DONE', null), ('c', 'c', 'BLUEPRINT_ERROR', 'bad answer'), ('d', 'c', 'BLUEPRINT_ERROR', 'x')
       returning id, status`,
    );
    const failed = rows.filter((r) => r.status === 'BLUEPRINT_ERROR').map((r) => r.id);

    const result = await runScript('src/cli/items-retry-failed.ts', [], { DATABASE_URL: db.url });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(`3 harvest items back to PENDING: ids ${failed.join(', ')}`);
    expect(await query('select id, status, error_message from harvest_items where id = any($1) order by id', [failed])).toEqual(failed.map((id) => ({ id, status: 'PENDING', error_message: null })));
    expect((await query(`select status from harvest_items where title = 'b'`))[0].status).toBe('BLUEPRINT_DONE');

    const again = await runScript('src/cli/items-retry-failed.ts', [], { DATABASE_URL: db.url });
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe('no harvest items in BLUEPRINT_ERROR; nothing changed');

    const usage = await runScript('src/cli/items-retry-failed.ts', ['--all'], { DATABASE_URL: db.url });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/usage: items:retry-failed/);
  }, 120_000);

  it('drops:regenerate makes a blueprint due for new drops, and refuses unknown blueprints and topics with one line', async () => {
    const [item] = await query(`insert into harvest_items (title, content, status) values ('e', 'c', 'BLUEPRINT_DONE') returning id`);
    const topics = ['A', 'B', 'C', 'D', 'E'].map((code) => ({ code, name: `Topic ${code}`, discipline: 'D' }));
    const [bp] = await query(
      `insert into exam_blueprints (harvest_item_id, exam_name, topics, raw_output, model, drops_generated_at) values ($1, 'Exam', $2, '{}', 'm', now()) returning id`,
      [item.id, JSON.stringify(topics)],
    );
    const pending = async () => (await query('select drops_generated_at, drops_regenerate from exam_blueprints where id = $1', [bp.id]))[0];

    const all = await runScript('src/cli/drops-regenerate.ts', [String(bp.id), '--bypass-cache'], { DATABASE_URL: db.url });
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout.trim()).toBe(`blueprint ${bp.id}: 5 topics due for new drops on the next generate-drops run (cache bypassed: new LLM calls, old drops replaced)`);
    expect(await pending()).toMatchObject({ drops_generated_at: null, drops_regenerate: { topic_codes: null, bypass_cache: true } });

    const some = await runScript('src/cli/drops-regenerate.ts', [String(bp.id), '--topics', 'B,D'], { DATABASE_URL: db.url });
    expect(some.code, some.stderr).toBe(0);
    expect(some.stdout.trim()).toBe(`blueprint ${bp.id}: 2 topics due for new drops on the next generate-drops run (from the cache where it has them)`);
    expect((await pending()).drops_regenerate).toMatchObject({ topic_codes: ['B', 'D'], bypass_cache: false });
    const before = await pending();

    const unknown = await runScript('src/cli/drops-regenerate.ts', ['999999'], { DATABASE_URL: db.url });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim().split('\n').at(-1)).toBe('drops:regenerate failed: no blueprint with id 999999');
    expect(unknown.stderr).not.toMatch(/^\s+at /m);

    const badTopic = await runScript('src/cli/drops-regenerate.ts', [String(bp.id), '--topics', 'B,Z'], { DATABASE_URL: db.url });
    expect(badTopic.code).toBe(1);
    expect(badTopic.stderr).toContain(`drops:regenerate failed: topicCodes: blueprint ${bp.id} has no topic Z (its topics: A, B, C, D, E)`);

    for (const args of [['abc'], [String(bp.id), '--topic', 'A'], [String(bp.id), '--topics', ',']]) {
      const usage = await runScript('src/cli/drops-regenerate.ts', args, { DATABASE_URL: db.url });
      expect(usage.code, args.join(' ')).toBe(2);
      expect(usage.stderr).toContain('usage: drops:regenerate');
    }
    expect(await pending()).toEqual(before);
  }, 180_000);
});
