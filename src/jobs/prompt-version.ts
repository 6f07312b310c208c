import { createHash } from 'node:crypto';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { z } from 'zod';

/**
 * A prompt's version: the first 12 hex of SHA-256 over its system text, user template and response
 * JSON schema, so any change of wording or schema gives a new version. Computed once at load.
 */
export type PromptDefinition = {
  /** The response format's name, as the jobs send it. */
  name: string;
  job: string;
  version: string;
  system: string;
  /** The user message with `{{placeholders}}` where the item goes. */
  userTemplate: string;
  /** The JSON schema sent as response_format, as text. */
  responseSchema: string;
};

export function definePrompt(p: { name: string; job: string; system: string; userTemplate: string; schema: z.ZodType }): PromptDefinition {
  const responseSchema = JSON.stringify(zodResponseFormat(p.schema, p.name).json_schema);
  const version = createHash('sha256').update(`${p.system}\u0000${p.userTemplate}\u0000${responseSchema}`).digest('hex').slice(0, 12);
  return { name: p.name, job: p.job, version, system: p.system, userTemplate: p.userTemplate, responseSchema };
}

/**
 * Fills `{{name}}` placeholders in one pass, so text from the item is never read as a placeholder.
 * A line whose placeholder is null is left out.
 */
export function fillTemplate(template: string, values: Record<string, string | null>): string {
  return template
    .split('\n')
    .filter((line) => !Object.entries(values).some(([name, value]) => value === null && line.includes(`{{${name}}}`)))
    .join('\n')
    .replaceAll(/\{\{(\w+)\}\}/g, (whole, name: string) => values[name] ?? whole);
}
