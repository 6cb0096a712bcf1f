/**
 * A PNG of a terminal screen: tmux's `capture-pane -e` text (with SGR colour codes) drawn as HTML in
 * headless Chromium. For the README's picture of `agent top` (cmd/commands/top.test.ts).
 */
import { launchChromium } from './chromium.js';

const COLORS: Record<string, string> = { '31': '#ff6b6b', '32': '#51cf66', '33': '#fcc419' };

/** The screen as HTML: colour, bold and dim from the SGR codes, everything else escaped. */
export function screenHtml(screen: string): string {
  let out = '';
  let open = false;
  const parts = screen.split(new RegExp(`${String.fromCharCode(27)}\\[([0-9;]*)m`));
  for (let i = 0; i < parts.length; i++) {
    if (i % 2 === 0) {
      out += parts[i].replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c] as string);
      continue;
    }
    if (open) out += '</span>';
    open = false;
    const styles = parts[i]
      .split(';')
      .map((code) =>
        COLORS[code] ? `color:${COLORS[code]}` : code === '1' ? 'font-weight:bold' : code === '2' ? 'opacity:.6' : '',
      )
      .filter(Boolean);
    if (styles.length) {
      out += `<span style="${styles.join(';')}">`;
      open = true;
    }
  }
  if (open) out += '</span>';
  return `<!doctype html><meta charset="utf-8"><body style="margin:0;background:#1e1e1e"><pre style="margin:0;padding:12px;color:#ddd;font:14px/1.3 'DejaVu Sans Mono',monospace">${out}</pre>`;
}

/** Writes `screen` as a PNG to each of `paths` with Debian's Chromium. */
export async function terminalScreenshot(
  screen: string,
  paths: string[],
  chromium = '/usr/bin/chromium',
): Promise<void> {
  const { browser, close } = await launchChromium(chromium);
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 200 });
    await page.setContent(screenHtml(screen.replace(/\s+$/, '')));
    const pre = await page.$('pre');
    for (const path of paths) await pre?.screenshot({ path });
  } finally {
    await close();
  }
}
