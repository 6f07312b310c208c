import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { startFakeOpenAI } from '../testkit/fake-openai.ts';
import type { FakeOpenAI } from '../testkit/fake-openai.ts';

const Answer = z.object({ title: z.string(), score: z.number() });

describe('fake OpenAI server', () => {
  let fake: FakeOpenAI;
  let client: OpenAI;

  beforeEach(async () => {
    fake = await startFakeOpenAI();
    client = new OpenAI({ apiKey: 'test-key', baseURL: fake.url, maxRetries: 0 });
  });
  afterEach(async () => {
    await fake.close();
  });

  const parse = (signal?: AbortSignal) =>
    client.chat.completions.parse(
      {
        model: 'gpt-test',
        messages: [{ role: 'user', content: 'Rate this.' }],
        response_format: zodResponseFormat(Answer, 'answer'),
      },
      { signal },
    );

  it('answers a parse call with structured content', async () => {
    fake.respond(() => ({ content: { title: 'ok', score: 3 } }));
    const completion = await parse();
    expect(completion.choices[0]?.message.parsed).toEqual({ title: 'ok', score: 3 });
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'Rate this.' }],
      responseFormatName: 'answer',
    });
    expect(fake.requests[0]?.headers.authorization).toBe('Bearer test-key');
  });

  it('passes a refusal through', async () => {
    fake.respond(() => ({ refusal: 'I cannot help with that.' }));
    const completion = await parse();
    expect(completion.choices[0]?.message.refusal).toBe('I cannot help with that.');
    expect(completion.choices[0]?.message.parsed).toBeNull();
  });

  it('fails with an APIError on a 500', async () => {
    // No responder set: the default answers 500.
    const error = await parse().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(500);
  });

  it('lets an AbortSignal end a hung request', async () => {
    fake.respond(() => ({ hang: true }));
    await expect(parse(AbortSignal.timeout(200))).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    expect(fake.requests).toHaveLength(1);
  });
});
