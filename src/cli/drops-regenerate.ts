import { parseArgs } from 'node:util';
import { CONFIGURATION_EXIT_CODE } from '../errors.ts';
import { requestDropsRegeneration } from '../pipeline/regenerate-drops.ts';
import { runCommand } from './command.ts';
import { withDatabase } from './with-database.ts';

const USAGE = 'usage: drops:regenerate -- <blueprintId> [--topics A,B] [--bypass-cache]';

/**
 * `npm run drops:regenerate -- <blueprintId> [--topics A,B] [--bypass-cache]`: the blueprint is due
 * for drops again, and the next generate-drops run writes them (the same operation as POST
 * /api/blueprints/{id}/regenerate-drops). Prints what changed on stdout; logs go to stderr.
 * Exit codes: 0 requested, 1 refused (unknown blueprint or topic, a run writing its drops) or
 * failed, 2 bad usage or configuration.
 */
async function main(argv: string[]): Promise<number> {
  const args = parseArguments(argv);
  if (typeof args === 'string') {
    console.error(`${args}\n${USAGE}`);
    return CONFIGURATION_EXIT_CODE;
  }
  return withDatabase(async (db) => {
    const { topics } = await requestDropsRegeneration(db, args.blueprintId, { topicCodes: args.topicCodes, bypassCache: args.bypassCache });
    const how = args.bypassCache ? 'cache bypassed: new LLM calls, old drops replaced' : 'from the cache where it has them';
    console.log(`blueprint ${args.blueprintId}: ${topics} topic${topics === 1 ? '' : 's'} due for new drops on the next generate-drops run (${how})`);
    return 0;
  });
}

/** The parsed arguments, or what is wrong with them. */
function parseArguments(argv: string[]): { blueprintId: number; topicCodes?: string[]; bypassCache: boolean } | string {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { topics: { type: 'string' }, 'bypass-cache': { type: 'boolean', default: false } } });
  } catch (error) {
    return (error as Error).message;
  }
  const [id, ...extra] = parsed.positionals;
  if (id === undefined) return 'a blueprint id is required';
  if (extra.length > 0) return `unexpected argument: ${extra.join(' ')}`;
  const blueprintId = Number(id);
  if (!/^\d+$/.test(id) || blueprintId < 1 || blueprintId > 2_147_483_647) return `blueprint id must be a positive integer, not "${id}"`;
  let topicCodes: string[] | undefined;
  if (parsed.values.topics !== undefined) {
    topicCodes = parsed.values.topics.split(',').map((code) => code.trim()).filter(Boolean);
    if (topicCodes.length === 0) return '--topics needs at least one topic code (leave it out for all)';
  }
  return { blueprintId, topicCodes, bypassCache: parsed.values['bypass-cache'] };
}

await runCommand('drops:regenerate', () => main(process.argv.slice(2)));
