import type { FakeReply } from './fake-openai.ts';

/**
 * Unusable extract-blueprints answers, one per way an answer can be bad, with the reason an item
 * that got it twice fails with (asked once more, then failed).
 */
export const BAD_BLUEPRINT_ANSWERS = {
  notjson: { content: '{"exam_name": "Concurso", "topics": [' },
  schema: { content: { exam_name: 'Concurso', topics: 'Português, Direito' } },
  dupcodes: {
    content: {
      exam_name: 'Concurso dup',
      organization: null,
      topics: [
        { code: 'PORT-01', name: 'Crase', discipline: 'Língua Portuguesa' },
        { code: 'PORT-01', name: 'Regência', discipline: 'Língua Portuguesa' },
      ],
    },
  },
  notopics: { content: { exam_name: 'Concurso vazio', organization: null, topics: [] } },
  refusal: { refusal: 'I cannot help with that request.' },
  length: { finishReason: 'length', content: '{"exam_name": "Concurso trunc' },
} satisfies Record<string, FakeReply>;

export const BAD_BLUEPRINT_REASONS: Record<keyof typeof BAD_BLUEPRINT_ANSWERS, RegExp> = {
  notjson: /^model output is not valid JSON: .* \(after 2 asks\)$/,
  schema: /^model output does not match the schema: .*topics: .* \(after 2 asks\)$/,
  dupcodes: /^model output breaks the rules: topic code "PORT-01" is repeated \(after 2 asks\)$/,
  notopics: /^model output breaks the rules: no topics \(after 2 asks\)$/,
  refusal: /^model refused: I cannot help with that request\. \(after 2 asks\)$/,
  length: /^output truncated \(finish_reason=length\) \(after 2 asks\)$/,
};
