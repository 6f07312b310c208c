/**
 * Plans for bench/data-at-scale.ts (B8): EXPLAIN (ANALYZE, BUFFERS) of a captured statement, the
 * indexes migration 0006 added (so a plan can be taken without them, inside a transaction that is
 * rolled back), and which route folders exist yet.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { ROOT } from './lib.ts';

/** The indexes of drizzle/0006_scale_indexes.sql. */
export const NEW_INDEXES: readonly string[] = ['exam_blueprints_drops_claimed_idx'];

/** Drops the 0006 indexes; call inside a transaction that is rolled back (DROP INDEX is transactional). */
export async function withoutNewIndexes(client: pg.Client): Promise<void> {
  for (const name of NEW_INDEXES) await client.query(`drop index if exists ${name}`);
}

/** The plan of `sql` with its parameters, executed (an update too: call it inside a transaction that is rolled back). */
export async function explainLines(client: pg.Client, sql: string, params: unknown[]): Promise<string[]> {
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${sql}`, params);
  return rows.map((row) => row['QUERY PLAN']);
}

/** A plan without its figures (costs, times, rows, buffers), to tell whether two plans are the same. */
export function planShape(lines: readonly string[]): string {
  return lines
    .filter((line) => !/^\s*(Buffers|Planning|Execution|Heap Blocks|Rows Removed|Worker|I\/O Timings|Memory|Sort Method|Storage)/.test(line) && !/^\s*Planning Time|^\s*Execution Time/.test(line))
    .map((line) => line.replace(/\s*\(cost=[^)]*\)/g, '').replace(/\s*\(actual[^)]*\)/g, '').replace(/\s*\(never executed\)/g, ''))
    .join('\n');
}

/** Whether src/http/routes/<folder>/ exists (routes other engineers are writing). */
export const routeExists = (folder: string): boolean => existsSync(join(ROOT, 'src', 'http', 'routes', folder));
