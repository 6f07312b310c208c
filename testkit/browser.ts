import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium, or CHROMIUM_PATH; null when there is none (browser suites skip, saying so). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM_PATH);
export const noChromiumNote = hasChromium ? '' : ` (skipped: no Chromium at ${CHROMIUM_PATH}; set CHROMIUM_PATH or apt-get install -y chromium)`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
}

export type WatchedPage = {
  page: Page;
  context: BrowserContext;
  /** Every URL the page requested, in order. */
  requested: string[];
  /** Console errors and uncaught exceptions. */
  problems: string[];
  /** Requests to any origin other than `origin` (data: URLs aside). */
  foreign(origin: string): string[];
};

/** A fresh context and page that records what it requested and every error it printed. */
export async function watchedPage(browser: Browser, options: { locale?: string; viewport?: { width: number; height: number } } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 }, locale: options.locale ?? 'en-US' });
  const page = await context.newPage();
  // A step that cannot happen fails in seconds, naming its locator, instead of at the test's timeout.
  page.setDefaultTimeout(8_000);
  page.setDefaultNavigationTimeout(30_000);
  const requested: string[] = [];
  const problems: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  page.on('pageerror', (error) => problems.push(error.message));
  return {
    page,
    context,
    requested,
    problems,
    foreign: (origin) => requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin),
  };
}
