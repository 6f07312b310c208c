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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'memodrops-scheduler' } }, destination);
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
