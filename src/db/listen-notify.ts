import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ConfigurationError } from '../errors.ts';
import { maskUrl, type Logger } from '../logger.ts';

export type ListenNotifyProbe = { delivered: boolean; ms: number };

/**
 * Whether a NOTIFY sent on one connection reaches a LISTEN on another, as pg-boss's wake-ups need.
 * A PgBouncer in transaction pooling mode (or a similar proxy) breaks it without an error: the
 * LISTEN runs on a server connection that goes back to the pool, so notifications never reach the
 * client that asked. `SHOW pool_mode` needs PgBouncer's admin console, so we test the feature itself.
 * The NOTIFY is repeated until one arrives, so a slow server is not mistaken for a pooler.
 */
export async function probeListenNotify(url: string, timeoutMs = 5_000): Promise<ListenNotifyProbe> {
  const channel = `memodrops_probe_${randomBytes(6).toString('hex')}`;
  const listener = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: 'memodrops-scheduler:probe' });
  const notifier = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: 'memodrops-scheduler:probe' });
  // A connection dropped mid-probe rejects the query in flight; the client's 'error' must not crash us.
  listener.on('error', () => {});
  notifier.on('error', () => {});
  const started = performance.now();
  try {
    await Promise.all([listener.connect(), notifier.connect()]);
    let received = false;
    const arrived = new Promise<void>((resolve) =>
      listener.on('notification', (message) => {
        if (message.channel === channel) {
          received = true;
          resolve();
        }
      }),
    );
    await listener.query(`LISTEN ${channel}`);
    const deadline = started + timeoutMs;
    while (!received && performance.now() < deadline) {
      await notifier.query(`NOTIFY ${channel}`);
      await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 250))]);
    }
    return { delivered: received, ms: performance.now() - started };
  } finally {
    await Promise.all([listener.end().catch(() => {}), notifier.end().catch(() => {})]);
  }
}

/**
 * Startup check for USE_LISTEN_NOTIFY=true: refuses (a ConfigurationError, exit 2) a database URL
 * through which notifications do not arrive. pg-boss would not notice: its LISTEN succeeds, and its
 * workers would then only poll at their slow backstop interval, as if notifications worked.
 */
export async function requireListenNotify(url: string, logger: Logger): Promise<void> {
  const probe = await probeListenNotify(url);
  if (probe.delivered) {
    logger.debug({ ms: Math.round(probe.ms) }, 'LISTEN/NOTIFY round trip works');
    return;
  }
  throw new ConfigurationError(
    `USE_LISTEN_NOTIFY=true, but a NOTIFY sent through ${maskUrl(url)} never reached a LISTEN on another connection ` +
      `(${Math.round(probe.ms / 1000)} s). That is what a PgBouncer in transaction pooling mode does. ` +
      'Set USE_LISTEN_NOTIFY=false (workers then poll every 2 s), or point DATABASE_URL at PostgreSQL itself ' +
      'or at a PgBouncer in session pooling mode. See README "Behind PgBouncer".',
    ['USE_LISTEN_NOTIFY', 'DATABASE_URL'],
  );
}
