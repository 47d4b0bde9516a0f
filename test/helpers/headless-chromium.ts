/**
 * Debian's Chromium driven by playwright-core, for the dashboard tests: one persistent context per test file and
 * an `open(url)` that waits for the page's `body[data-ready]` and collects every request and script problem.
 */
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface OpenedPage {
  page: Page;
  /** Every URL the page requested. */
  requests: string[];
  /** Console errors and warnings, and uncaught page errors. */
  problems: string[];
}

/** Launches Chromium with a fresh profile under `dir` (closed at teardown) and returns a page opener. */
export async function headlessBrowser(t: Test, dir: string, viewport: { width: number; height: number }): Promise<(url: string) => Promise<OpenedPage>> {
  const context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport,
  });
  t.teardown(() => context.close());
  return async (url) => {
    const page = await context.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(url);
    await page.waitForSelector('body[data-ready]', { timeout: 20_000 });
    return { page, requests, problems };
  };
}
