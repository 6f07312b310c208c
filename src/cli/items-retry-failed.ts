import { CONFIGURATION_EXIT_CODE } from '../errors.ts';
import { retryAllFailedHarvestItems } from '../pipeline/harvest-items.ts';
import { runCommand } from './command.ts';
import { withDatabase } from './with-database.ts';

/**
 * `npm run items:retry-failed`: every BLUEPRINT_ERROR harvest item back to PENDING (error cleared),
 * for the next extract-blueprints run; the same operation as POST /api/harvest-items/retry-failed.
 * Prints what changed on stdout; logs go to stderr. Exit codes: 0 done (none to retry included),
 * 1 failed, 2 bad usage or configuration.
 */
async function main(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    console.error('usage: items:retry-failed   (takes no arguments)');
    return CONFIGURATION_EXIT_CODE;
  }
  return withDatabase(async (db) => {
    const ids = await retryAllFailedHarvestItems(db);
    console.log(ids.length === 0 ? 'no harvest items in BLUEPRINT_ERROR; nothing changed' : `${ids.length} harvest item${ids.length === 1 ? '' : 's'} back to PENDING: id${ids.length === 1 ? '' : 's'} ${ids.join(', ')}`);
    return 0;
  });
}

await runCommand('items:retry-failed', () => main(process.argv.slice(2)));
