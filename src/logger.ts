import pino, { type Logger } from 'pino';

export type { Logger };

/** Paths that may carry secrets; pino replaces their values before anything is written. */
const REDACT = [
  'apiKey',
  'password',
  'token',
  'authorization',
  '*.apiKey',
  '*.password',
  '*.token',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
];

export type LogFormat = 'json' | 'pretty';

/**
 * The root logger. JSON lines by default (for log shippers); `pretty` gives colourised lines for a
 * terminal. An explicit destination (tests, the CLI's stderr) always gets JSON.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  const options: pino.LoggerOptions = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'memodrops-scheduler' } };
  if (!destination && format === 'pretty') {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } });
  }
  return pino(options, destination);
}

/** Hides the password of a connection URL so it can be logged. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '****';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
