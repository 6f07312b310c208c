import { EnvError, parseEnv } from './env.ts';
import { createLogger } from './logger.ts';
import { startService, type Service } from './service.ts';

/** `npm start`: the whole service, stopped gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let env;
  try {
    env = parseEnv();
  } catch (error) {
    if (!(error instanceof EnvError)) throw error;
    console.error(error.message);
    process.exit(2);
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
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopRequested = signal;
    if (service) stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    service = await startService(env, logger);
  } catch (error) {
    logger.fatal({ err: error }, `startup failed: ${(error as Error).message}`);
    process.exit(1);
  }
  if (stopRequested) stop(stopRequested);
}

await main();
