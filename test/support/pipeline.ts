import { expect } from 'vitest';
import { runsOfJob } from '../../src/db/job-logs.ts';
import type { FakeRequest } from '../../testkit/fake-openai.ts';
import { readJson, type Json } from './http.ts';
import { eventually, type TestService } from './service.ts';

/** The user message of a request to the fake LLM ('' when there is none). */
export const userMessage = (req: FakeRequest) => req.messages.find((m) => m.role === 'user')?.content ?? '';

/** Each item's content carries a marker so the fake can tell which item a request is about. */
export const itemMarker = (key: string) => `[[item:${key}]]`;
export const itemKeyOf = (req: FakeRequest): string | undefined => /\[\[item:([\w-]+)\]\]/.exec(userMessage(req))?.[1];

/** The plain harvest item for `key`: "Edital <key>", with the key's marker in its content. */
export const keyedItem = (key: string) => ({ title: `Edital ${key}`, content: `Edital ${key} ${itemMarker(key)}` });

/** Posts a harvest item over HTTP, expects a 201 and returns the created row. */
export async function createItem(t: TestService, item: { title: string; content: string; source_url?: string | null }): Promise<Json> {
  const res = await t.http('/api/harvest-items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(item) });
  expect(res.status).toBe(201);
  return readJson(res);
}

/** Triggers a manual run over HTTP, expects a 202 and returns its pg-boss job id. */
export async function trigger(t: TestService, name: string): Promise<string> {
  const res = await t.http(`/api/jobs/run/${name}`, { method: 'POST' });
  const answer = await readJson(res);
  expect(res.status, JSON.stringify(answer)).toBe(202);
  return answer.jobId;
}

/** Triggers a manual run of `name` that will fail for good, and waits until GET /api/jobs/dead-letters lists it; returns its pg-boss job id and its dead letter. */
export async function deadLetteredRun(t: TestService, name: string): Promise<{ jobId: string; letter: Json }> {
  const jobId = await trigger(t, name);
  const letter = await eventually(async () => ((await readJson(await t.http('/api/jobs/dead-letters?limit=100'))) as Json[]).find((d) => d.source_job_id === jobId));
  return { jobId, letter };
}

/** Waits for the first attempt of the run of `jobId` to close, and returns its job_logs row. */
export function closedLog(t: TestService, jobId: string, options?: { timeoutMs?: number }): Promise<Json> {
  return eventually(async () => (await runsOfJob(t.service.database.db, jobId)).find((run) => run.status !== 'STARTED'), options);
}
