import { parseEnv } from './env.ts';
import { CONFIGURATION_EXIT_CODE, ConfigurationError } from './errors.ts';
import { createLogger } from './logger.ts';
import { startService, type Service } from './service.ts';

/** `npm start`: the whole service, stopped gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let env;
  try {
    env = parseEnv();
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    console.error(error.message);
    process.exit(CONFIGURATION_EXIT_CODE);
  }
  const logger = createLogger(env.LOG_LEVEL, undefined, env.LOG_FORMAT);

  // Installed before startup, so a signal that arrives while starting still stops cleanly.
  let service: Service | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, `${signal} received: stopping (running jobs get ${env.SHUTDOWN_TIMEOUT_SECONDS} s to finish)`);
    service!.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  let stopRequestedAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) {
      // Under `npm start` one Ctrl-C arrives twice: from the terminal (to the whole process group)
      // and forwarded by npm. Only a later repeat is someone insisting.
      if (Date.now() - stopRequestedAt < 1_000) return;
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopRequested = signal;
    stopRequestedAt = Date.now();
    if (service) stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    service = await startService(env, logger);
  } catch (error) {
    // A setting that cannot work is the operator's to fix: its message, no stack trace, exit 2.
    if (error instanceof ConfigurationError) {
      logger.fatal({ variables: error.variables }, `startup failed: ${error.message}`);
      process.exit(CONFIGURATION_EXIT_CODE);
    }
    logger.fatal({ err: error }, `startup failed: ${(error as Error).message}`);
    process.exit(1);
  }
  if (stopRequested) stop(stopRequested);
}

await main();
