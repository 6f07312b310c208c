import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium, noChromiumNote, watchedPage, type WatchedPage } from '../testkit/browser.ts';
import { call, expectError, JOBS, type Json } from './support/http.ts';
import { closedLog, createItem, deadLetteredRun, keyedItem, trigger } from './support/pipeline.ts';
import { jobsWithoutRetries, startTestService, type TestService } from './support/service.ts';

/**
 * The operator console at `/`, in Debian's Chromium (headless, through playwright-core), against
 * the real service on the embedded PostgreSQL and the fake OpenAI server.
 */

const TOKEN = 'console-test-token-0123456789abcdef';
const READONLY = 'console-readonly-token-0123456789abcdef';

/** Serious and critical accessibility violations axe-core finds on the page as it is now. */
async function seriousViolations(page: Page): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

const jobCard = (page: Page, job: string) => page.locator(`article[data-job="${job}"]`);

describe('GET /api/session: what the token may do', () => {
  it('says auth is off, or which token came, and whether it may write; a wrong token is a 401', async () => {
    const off = await startTestService();
    try {
      expect((await call(off, '/api/session')).body).toEqual({ auth: false, role: null, can_write: true });
    } finally {
      await off.stop();
    }
    const on = await startTestService({ API_TOKEN: TOKEN, API_TOKEN_READONLY: READONLY });
    try {
      const as = (token: string) => call(on, '/api/session', { headers: { authorization: `Bearer ${token}` } });
      expect((await as(TOKEN)).body).toEqual({ auth: true, role: 'api_token', can_write: true });
      expect((await as(READONLY)).body).toEqual({ auth: true, role: 'api_token_readonly', can_write: false });
      expectError(await as('wrong-token-0123456789'), 401, /invalid bearer token/);
      expectError(await call(on, '/api/session'), 401, /missing bearer token/);
    } finally {
      await on.stop();
    }
  });
});

describe.skipIf(!hasChromium)(`the console, auth off${noChromiumNote}`, () => {
  let t: TestService;
  let browser: Browser;
  beforeAll(async () => {
    t = await startTestService();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  async function open(locale = 'en-US'): Promise<WatchedPage> {
    const watched = await watchedPage(browser, { locale });
    await watched.page.goto(t.service.url);
    await jobCard(watched.page, JOBS[0]).waitFor();
    return watched;
  }

  it('loads from the service alone, with no console error, and shows each job with its schedule in words and its next runs', async () => {
    const { page, context, problems, foreign, requested } = await open();
    try {
      for (const job of JOBS) {
        const card = jobCard(page, job);
        const schedule = (await call(t, `/api/jobs/schedules/${job}`)).body;
        await expect(card.locator('.description').innerText()).resolves.toBe(schedule.description);
        await expect(card.locator('code').innerText()).resolves.toBe(schedule.cron_expression);
        await expect(card.locator('.next-runs li').count()).resolves.toBe(5);
        await expect(card.getByText('Never ran')).toBeDefined();
      }
      expect(requested.some((url) => url.endsWith('/console/vendor/preact.js'))).toBe(true);
      expect(foreign(new URL(t.service.url).origin)).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('is served under a Content-Security-Policy that allows only this origin, compressed', async () => {
    const res = await fetch(`${t.service.url}/`, { headers: { 'accept-encoding': 'gzip' } });
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toMatch(/unsafe-inline|https?:/);
    const script = await fetch(`${t.service.url}/console/vendor/preact.js`, { headers: { 'accept-encoding': 'gzip' } });
    expect(script.headers.get('content-encoding')).toBe('gzip');
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    // Unchanged files are revalidated, not sent again.
    const again = await fetch(`${t.service.url}/console/vendor/preact.js`, { headers: { 'if-none-match': script.headers.get('etag')! } });
    expect(again.status).toBe(304);
    // Only the console's own files and the listed vendor files: nothing else of the disk or node_modules.
    for (const path of ['/console/app/../package.json', '/console/app/%2e%2e/package.json', '/console/vendor/package.json', '/console/app/nope.js']) {
      expect((await fetch(`${t.service.url}${path}`)).status, path).toBe(404);
    }
  });

  it('shows data that takes longer than the 4 s refresh to come, and never asks again while waiting', async () => {
    const watched = await watchedPage(browser);
    try {
      let inFlight = 0;
      let most = 0;
      // The status route held back 5 s: longer than the refresh interval.
      await watched.page.route('**/api/jobs/status', async (route) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        await route.continue();
        inFlight -= 1;
      });
      await watched.page.goto(t.service.url);
      await jobCard(watched.page, 'extract-blueprints').waitFor({ timeout: 8_000 });
      expect(most).toBe(1);
    } finally {
      await watched.context.close();
    }
  });

  it('pauses and resumes a job: the schedule changes in the service, and the page says so', async () => {
    const { page, context } = await open();
    try {
      const card = jobCard(page, 'generate-drops');
      await card.getByRole('button', { name: 'Pause' }).click();
      await card.getByRole('button', { name: 'Resume' }).waitFor();
      expect((await call(t, '/api/jobs/schedules/generate-drops')).body.is_active).toBe(false);
      await expect(card.getByText('None while paused')).toBeDefined();
      await card.getByRole('button', { name: 'Resume' }).click();
      await card.getByRole('button', { name: 'Pause' }).waitFor();
      expect((await call(t, '/api/jobs/schedules/generate-drops')).body.is_active).toBe(true);
    } finally {
      await context.close();
    }
  });

  it('works from the keyboard alone: Tab reaches a job\'s Pause, Enter presses it, and the pages\' links open with Enter', async () => {
    const { page, context, problems } = await open();
    try {
      /** Presses Tab until the focused element is the one `matches` accepts; fails after 80 presses. */
      const tabTo = async (what: string, matches: (el: { tag: string; name: string; job: string | null }) => boolean) => {
        for (let presses = 0; presses < 80; presses++) {
          await page.keyboard.press('Tab');
          // A string: this file is compiled without the DOM's types.
          const focused = (await page.evaluate(`(() => {
            const el = document.activeElement;
            return { tag: el?.tagName ?? '', name: (el?.getAttribute('aria-label') ?? el?.textContent ?? '').trim(), job: el?.closest('article')?.getAttribute('data-job') ?? null };
          })()`)) as { tag: string; name: string; job: string | null };
          if (matches(focused)) return;
        }
        throw new Error(`Tab never reached ${what}`);
      };
      await tabTo("generate-drops' Pause", (el) => el.tag === 'BUTTON' && el.name === 'Pause' && el.job === 'generate-drops');
      await page.keyboard.press('Enter');
      await jobCard(page, 'generate-drops').getByRole('button', { name: 'Resume' }).waitFor();
      expect((await call(t, '/api/jobs/schedules/generate-drops')).body.is_active).toBe(false);
      await page.keyboard.press('Enter');
      await jobCard(page, 'generate-drops').getByRole('button', { name: 'Pause' }).waitFor();
      expect((await call(t, '/api/jobs/schedules/generate-drops')).body.is_active).toBe(true);
      // Back to the top, then to the Queue link.
      await page.evaluate('document.activeElement?.blur()');
      await tabTo('the Queue link', (el) => el.tag === 'A' && el.name === 'Queue');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Queue and dead letters' }).waitFor();
      expect(new URL(page.url()).hash).toBe('#/queue');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('speaks Portuguese to a Portuguese browser, schedules in words included, and switches to English', async () => {
    const { page, context } = await open('pt-BR');
    try {
      const card = jobCard(page, 'generate-drops');
      await card.getByRole('button', { name: 'Executar agora' }).waitFor();
      const described = (await call(t, '/api/jobs/schedules/generate-drops', { headers: { 'accept-language': 'pt-BR' } })).body.description;
      await expect(card.locator('.description').innerText()).resolves.toBe(described);
      await page.getByRole('combobox', { name: 'Idioma' }).selectOption('en');
      await card.getByRole('button', { name: 'Run now' }).waitFor();
      await expect(page.locator('html').getAttribute('lang')).resolves.toBe('en');
    } finally {
      await context.close();
    }
  });

  it('edits a schedule: the server\'s error for a bad cron as it is typed, the next runs for a good one, then saves it and lists the change', async () => {
    const { page, context, problems } = await open();
    try {
      await page.goto(`${t.service.url}/#/schedule/generate-drops`);
      const cron = page.getByLabel(/Cron expression/);
      await cron.fill('0 30 2 * * *');
      const refused = (await call(t, `/api/cron/preview?cron_expression=${encodeURIComponent('0 30 2 * * *')}&timezone=UTC`)).body.error;
      await expect(page.getByTestId('cron-error').innerText()).resolves.toBe(refused);
      await expect(page.getByRole('button', { name: 'Save' }).isDisabled()).resolves.toBe(true);
      await cron.fill('15 4 * * 1');
      await page.getByLabel(/Time zone/).fill('America/Sao_Paulo');
      await page.locator('#cron-check .next-runs li').nth(4).waitFor();
      const expected = (await call(t, '/api/cron/preview?cron_expression=15%204%20*%20*%201&timezone=America/Sao_Paulo&count=5')).body.runs.map((r: { at: string }) => r.at);
      await expect(page.locator('#cron-check .next-runs time').evaluateAll((els) => els.map((el) => el.getAttribute('datetime')))).resolves.toEqual(expected);
      await page.getByLabel(/Daily LLM budget/).fill('0.5');
      await page.getByRole('button', { name: 'Save' }).click();
      await expect(page.getByRole('status').innerText()).resolves.toBe('Saved');
      expect((await call(t, '/api/jobs/schedules/generate-drops')).body).toMatchObject({ cron_expression: '15 4 * * 1', timezone: 'America/Sao_Paulo', daily_budget_usd: 0.5 });
      await page.locator('table tbody tr', { hasText: '15 4 * * 1 · America/Sao_Paulo' }).first().waitFor();
      // A budget that is not a number: the service's 400, shown as it said it; nothing changed.
      await page.getByLabel(/Daily LLM budget/).fill('cheap');
      await page.getByRole('button', { name: 'Save' }).click();
      await expect(page.getByRole('status').innerText()).resolves.toMatch(/daily_budget_usd must be a number/);
      expect((await call(t, '/api/jobs/schedules/generate-drops')).body.daily_budget_usd).toBe(0.5);
      expect(problems.filter((p) => !/status of 400/.test(p))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('adds a harvest item, and sees it become a blueprint with drops', async () => {
    const { page, context, problems } = await open();
    try {
      t.llm.respond((req) =>
        req.responseFormatName === 'exam_blueprint'
          ? { content: { exam_name: 'Concurso do console', organization: null, topics: [{ code: 'C1', name: 'Tópico do console', discipline: 'Disciplina' }] } }
          : { content: { drops: [{ title: 'Drop do console', content: 'Conteúdo do drop.' }] } },
      );
      await page.goto(`${t.service.url}/#/pipeline`);
      await page.getByText('Add harvest items').click();
      await page.getByLabel('Title', { exact: true }).fill('Edital do console');
      await page.getByLabel('Content').fill('Conteúdo programático: tópico do console.');
      await page.getByRole('button', { name: 'Add item' }).click();
      const added = /Item (\d+) added/.exec(await page.getByRole('status').innerText())![1];
      await page.locator(`tr[data-item="${added}"] .item-status`, { hasText: 'PENDING' }).waitFor();
      // The title search: the item by a word's start, nothing for a word it lacks.
      await page.getByLabel('Title has').fill('edit consol');
      await page.locator('table.items tbody tr').filter({ hasText: 'Edital do console' }).waitFor();
      await page.getByLabel('Title has').fill('nenhures');
      await page.locator(`tr[data-item="${added}"]`).waitFor({ state: 'detached' });
      await page.getByLabel('Title has').fill('');
      await page.goto(`${t.service.url}/#/overview`);
      await jobCard(page, 'extract-blueprints').getByRole('button', { name: 'Run now' }).click();
      await page.goto(`${t.service.url}/#/pipeline`);
      await page.locator(`tr[data-item="${added}"] .item-status`, { hasText: 'BLUEPRINT_DONE' }).waitFor({ timeout: 15_000 });
      const blueprint = page.locator('table.blueprints tbody tr', { hasText: 'Concurso do console' });
      await blueprint.getByRole('link').click();
      await page.locator('[data-topic="C1"]').waitFor();
      await trigger(t, 'generate-drops');
      await page.locator('[data-topic="C1"] .drops li', { hasText: 'Drop do console' }).waitFor({ timeout: 15_000 });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the runs page lists runs newest first with filters, and a run\'s detail shows its metadata', async () => {
    const { page, context, problems } = await open();
    try {
      await page.goto(`${t.service.url}/#/runs?jobName=extract-blueprints`);
      const rows = page.locator('table.runs tbody tr');
      await rows.first().waitFor();
      const listed = (await call(t, '/api/jobs/logs?jobName=extract-blueprints&limit=50')).body;
      await expect(rows.count()).resolves.toBe(listed.length);
      await expect(rows.first().getAttribute('data-run')).resolves.toBe(String(listed[0].id));
      await rows.first().getByRole('link').click();
      await page.getByRole('heading', { name: `Run #${listed[0].id}` }).waitFor();
      await expect(page.locator('dd', { hasText: 'manual' }).count()).resolves.toBeGreaterThan(0);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('cancels a slow run from the queue page: its log ends FAILED "cancelled by operator"', async () => {
    const { page, context, problems } = await open();
    try {
      t.llm.respond(() => ({ hang: true }));
      const slow = await createItem(t, keyedItem('slow'));
      const jobId = await trigger(t, 'extract-blueprints');
      await page.goto(`${t.service.url}/#/queue`);
      const row = page.locator(`tr[data-job-id="${jobId}"]`);
      await row.locator('td', { hasText: 'running' }).waitFor({ timeout: 15_000 });
      await row.getByRole('button', { name: 'Cancel' }).click();
      await expect(page.getByRole('status').innerText()).resolves.toMatch(/cancel/i);
      const log = await closedLog(t, jobId);
      expect(log).toMatchObject({ status: 'FAILED', error_message: 'cancelled by operator' });
      await row.waitFor({ state: 'detached' });
      expect(problems).toEqual([]);
      // Given back PENDING; removed so that later runs do not hang on it.
      expect((await call(t, `/api/harvest-items/${slow.id}`, { method: 'DELETE' })).status).toBe(200);
    } finally {
      await context.close();
    }
  });

  it('every page loads with no console error, nothing from another host, and no serious or critical accessibility violation (axe-core)', async () => {
    const { page, context, problems, foreign } = await open();
    try {
      for (const hash of ['#/overview', '#/runs', '#/queue', '#/pipeline', '#/costs', '#/schedule/extract-blueprints']) {
        await page.goto(`${t.service.url}/${hash}`);
        await page.locator('.live', { hasText: /Updated/ }).first().waitFor().catch((error) => {
          throw new Error(`${hash} never showed its data: ${error.message}`);
        });
        expect(await seriousViolations(page), hash).toEqual([]);
      }
      expect(foreign(new URL(t.service.url).origin)).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
  it('"Run now" starts a run that appears and finishes on the page without a reload; a second while one waits shows the 409 with the waiting job', async () => {
    const { page, context, problems } = await open();
    try {
      const card = jobCard(page, 'extract-blueprints');
      await card.getByRole('button', { name: 'Run now' }).click();
      await expect(card.getByRole('status').innerText()).resolves.toMatch(/^Run [0-9a-f-]{36} queued$/);
      // The poll brings the run in: its status, linked to its log.
      await card.locator('.last-run [data-status="COMPLETED"]').waitFor({ timeout: 15_000 });
      const latest = (await call(t, '/api/jobs/logs/extract-blueprints/latest')).body;
      await expect(card.locator('.last-run a').innerText()).resolves.toBe(`#${latest.id}`);

      // With no worker, a run waits; the next "Run now" is refused, naming the waiting job. (Last
      // in this suite: generate-drops has no worker from here on.)
      await t.service.boss.offWork('generate-drops');
      const drops = jobCard(page, 'generate-drops');
      await drops.getByRole('button', { name: 'Run now' }).click();
      const first = /Run ([0-9a-f-]{36}) queued/.exec(await drops.getByRole('status').innerText())![1];
      await drops.getByRole('button', { name: 'Run now' }).click();
      await drops.getByRole('status').filter({ hasText: `(waiting job ${first})` }).waitFor();
      await drops.locator('.queue-counts', { hasText: /^1 \/ 0 \/ 0$/ }).waitFor();
      // The 409 is the one console error expected here (the browser reports every failed request).
      expect(problems.filter((p) => !/status of 409/.test(p))).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe.skipIf(!hasChromium)(`the console, API_TOKEN set${noChromiumNote}`, () => {
  let t: TestService;
  let browser: Browser;
  beforeAll(async () => {
    t = await startTestService({ API_TOKEN: TOKEN, API_TOKEN_READONLY: READONLY });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  async function signIn(page: Page, token: string) {
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  it('asks for the token once, refuses a wrong one with the service\'s words, keeps a good one for the tab, and signs out', async () => {
    const { page, context } = await watchedPage(browser);
    try {
      await page.goto(t.service.url);
      await signIn(page, 'wrong-token');
      await expect(page.getByRole('alert').innerText()).resolves.toContain('invalid bearer token');
      await signIn(page, TOKEN);
      await jobCard(page, 'extract-blueprints').waitFor();
      await expect(jobCard(page, 'extract-blueprints').getByRole('button', { name: 'Run now' }).isEnabled()).resolves.toBe(true);
      // Kept for the tab: a reload does not ask again.
      await page.reload();
      await jobCard(page, 'extract-blueprints').waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('API token').waitFor();
      await page.reload();
      await page.getByLabel('API token').waitFor();
    } finally {
      await context.close();
    }
  });

  it('the read-only token sees everything, and every write control is disabled, saying why', async () => {
    const { page, context, problems } = await watchedPage(browser);
    try {
      await page.goto(t.service.url);
      await signIn(page, READONLY);
      const card = jobCard(page, 'extract-blueprints');
      await card.locator('.next-runs li').first().waitFor();
      await expect(page.getByText('Read-only token').isVisible()).resolves.toBe(true);
      for (const name of ['Run now', 'Pause']) {
        const button = card.getByRole('button', { name });
        await expect(button.isDisabled()).resolves.toBe(true);
        await expect(button.getAttribute('title')).resolves.toMatch(/read-only token .* cannot change anything/);
      }
      // Only the sign-in probe was refused.
      expect(problems.filter((p) => !/status of 401/.test(p))).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe.skipIf(!hasChromium)(`the console's dead letters${noChromiumNote}`, () => {
  let t: TestService;
  let browser: Browser;
  /** Dead letters' source pg-boss job ids, by job. */
  const failed: Record<string, string[]> = { 'extract-blueprints': [], 'generate-drops': [] };
  beforeAll(async () => {
    // No API key and no retries: every run fails at once and is dead-lettered.
    t = await startTestService({ OPENAI_API_KEY: '' }, { registry: jobsWithoutRetries() });
    browser = await launchChromium();
    for (const job of ['extract-blueprints', 'generate-drops', 'extract-blueprints']) {
      failed[job]!.push((await deadLetteredRun(t, job)).jobId);
    }
    // What is sent back waits in its queue instead of failing again.
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('filters dead letters by error, and sends back all matching as one run per job', async () => {
    const { page, context, problems } = await watchedPage(browser);
    try {
      await page.goto(`${t.service.url}/#/queue`);
      const rows = page.locator('tr[data-dead-letter]');
      await expect.poll(() => rows.count()).toBe(3);
      expect(await seriousViolations(page)).toEqual([]);

      const errorFilter = page.getByLabel('Error contains');
      await errorFilter.fill('no failure says this');
      await errorFilter.press('Enter');
      await page.getByText('No dead letters.').waitFor();
      await errorFilter.fill('openai_api_key');
      await errorFilter.press('Enter');
      await expect.poll(() => rows.count()).toBe(3);

      await page.getByRole('button', { name: 'Send back all matching (3)' }).click();
      const status = page.getByRole('status');
      await status.filter({ hasText: 'extract-blueprints' }).waitFor();
      expect(await status.innerText()).toBe('extract-blueprints: sent back as one run (dead letters: 2) · generate-drops: sent back as one run (dead letters: 1)');
      await page.getByText('No dead letters.').waitFor();

      // One run of each job waits in its queue, on the page and in pg-boss.
      for (const job of JOBS) {
        const [queued] = await t.service.boss.findJobs(job, { queued: true });
        expect(queued?.sourceRootId, job).toBe(failed[job]!.at(-1));
        await page.locator(`tr[data-job-id="${queued!.id}"]`).waitFor();
      }
      // A settled letter's run says where its work went.
      const log = ((await call(t, '/api/jobs/logs?jobName=extract-blueprints')).body as Json[]).find((l) => l.metadata.job_id === failed['extract-blueprints']![0]);
      await page.goto(`${t.service.url}/#/runs/${log!.id}`);
      await page.getByText(/sent back from the dead letters as job [0-9a-f-]{36}/).waitFor();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
