import type { Db } from '../db/client.ts';
import { countBlueprintsNotOfPrompt } from '../db/blueprints.ts';
import { countDropsNotOfPrompt } from '../db/drops.ts';
import { EXTRACT_PROMPT } from './extract-blueprints.prompt.ts';
import { DROPS_PROMPT } from './generate-drops.prompt.ts';
import type { PromptDefinition } from './prompt-version.ts';

/** The prompts the jobs send today, and how much of what is stored was made with another version. */

export const PROMPTS: readonly PromptDefinition[] = [EXTRACT_PROMPT, DROPS_PROMPT];

export type PromptReport = {
  name: string;
  job: string;
  version: string;
  system_chars: number;
  user_template_chars: number;
  response_schema_chars: number;
  /** Rows made with another version or none (null: made before versions); null where this prompt makes no such rows. */
  made_with_older: { blueprints: number | null; drops: number | null; cache_entries: number | null };
};

export async function listPrompts(db: Db): Promise<PromptReport[]> {
  const blueprints = await countBlueprintsNotOfPrompt(db, EXTRACT_PROMPT.version);
  const drops = await countDropsNotOfPrompt(db, DROPS_PROMPT.version);
  const older: Record<string, PromptReport['made_with_older']> = {
    [EXTRACT_PROMPT.name]: { blueprints, drops: null, cache_entries: null },
    [DROPS_PROMPT.name]: { blueprints: null, drops: drops.drops, cache_entries: drops.cacheEntries },
  };
  return PROMPTS.map((p) => ({
    name: p.name,
    job: p.job,
    version: p.version,
    system_chars: p.system.length,
    user_template_chars: p.userTemplate.length,
    response_schema_chars: p.responseSchema.length,
    made_with_older: older[p.name]!,
  }));
}
