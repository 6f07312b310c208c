import { CONFIGURATION_EXIT_CODE, ConfigurationError } from '../errors.ts';

/**
 * Runs a command's main and sets the exit code: what main returns, CONFIGURATION_EXIT_CODE (2) with
 * just the message for a configuration error thrown anywhere (a bad variable, a DATA_DIR the
 * database cannot reach…), 1 with `<name> failed: <message>` for anything else. No stack traces.
 */
export async function runCommand(name: string, main: () => Promise<number>): Promise<void> {
  process.exitCode = await main().catch((error: unknown) => {
    if (error instanceof ConfigurationError) {
      console.error(error.message);
      return CONFIGURATION_EXIT_CODE;
    }
    console.error(`${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  });
}
