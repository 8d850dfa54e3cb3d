/**
 * Real headless Chromium for the console and accessibility tests (never a downloaded
 * browser): the system's /usr/bin/chromium with the suite's flags, closed when the test
 * ends; Playwright gives every launch a fresh profile directory.
 *
 *   const browser = await launchChromium(t);
 *   const page = await (await browser.newContext()).newPage();
 *   await page.goto(`${gw.issuer}/admin`);
 *   await signInAsAdmin(page);
 */
import type { ExecutionContext } from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TEST_ADMIN } from './gateway.ts';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];

export async function launchChromium(t: ExecutionContext): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  return browser;
}

/** Fills and sends the login page the console redirected to, as the test gateway's bootstrap admin. */
export async function signInAsAdmin(page: Page): Promise<void> {
  await page.getByLabel('Email').fill(TEST_ADMIN.email);
  await page.getByLabel('Password').fill(TEST_ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
