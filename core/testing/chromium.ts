/**
 * Debian's Chromium, headless, through puppeteer-core, with a profile directory of its own that
 * `close` removes: what the dashboard's browser test and the terminal screenshots launch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Viewport } from 'puppeteer-core';

export interface HeadlessChromium {
  browser: Browser;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

export async function launchChromium(executablePath: string, defaultViewport?: Viewport): Promise<HeadlessChromium> {
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = mkdtempSync(join(tmpdir(), 'agent-chromium-'));
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
    ...(defaultViewport ? { defaultViewport } : {}),
    // Chromium's start took over puppeteer's 30 s default once on a loaded 2-core machine.
    timeout: 120_000,
  });
  return {
    browser,
    async close() {
      try {
        await browser.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
