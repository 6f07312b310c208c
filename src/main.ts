import { EnvError, parseEnv } from './env.ts';
import { createLogger } from './logger.ts';
import { startService } from './service.ts';

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
  const service = await startService(env, logger).catch((error) => {
    logger.fatal({ err: error }, `startup failed: ${error.message}`);
    process.exit(1);
  });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    logger.info({ signal }, `${signal} received: stopping (running jobs get ${env.SHUTDOWN_TIMEOUT_SECONDS} s to finish)`);
    service.stop().then(
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
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

await main();
