/**
 * The dashboard's static files: the page, its script and style from `core/views/dashboard/` (they
 * ship in the package as they are: no build step), and uPlot's browser build from node_modules.
 * Read once, on first use, and kept in memory (about 60 KB).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ApiResponse } from '../api/types.js';
import { ApiError } from '../api/types.js';
import { PACKAGE_ROOT } from '../package-root.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** File name served -> where it is read from. */
function locate(): Map<string, string> {
  // Built (dist/core/views or the dist/agent.cjs bundle): the copy scripts/copy-dashboard.mjs put in
  // dist; from source (tsx): the folder itself.
  const candidates = [
    join(PACKAGE_ROOT, 'dist', 'core', 'views', 'dashboard'),
    join(PACKAGE_ROOT, 'core', 'views', 'dashboard'),
  ];
  const dir = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!dir) throw new Error(`dashboard files not found in ${candidates.join(' or ')}: reinstall the agent`);
  const uplot = dirname(createRequire(import.meta.url).resolve('uplot'));
  return new Map([
    ['index.html', join(dir, 'index.html')],
    ['app.js', join(dir, 'app.js')],
    ['style.css', join(dir, 'style.css')],
    ['uPlot.iife.min.js', join(uplot, 'uPlot.iife.min.js')],
    ['uPlot.min.css', join(uplot, 'uPlot.min.css')],
  ]);
}

export class DashboardAssets {
  #files: Map<string, string> | undefined;
  readonly #cache = new Map<string, Buffer>();

  response(name: string): ApiResponse {
    this.#files ??= locate();
    const path = this.#files.get(name);
    if (!path) throw new ApiError(404, `no dashboard file ${JSON.stringify(name)}`);
    let body = this.#cache.get(name);
    if (!body) {
      body = readFileSync(path);
      this.#cache.set(name, body);
    }
    const ext = name.slice(name.lastIndexOf('.'));
    return {
      status: 200,
      body,
      contentType: TYPES[ext] ?? 'application/octet-stream',
      headers: {
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
        ...(ext === '.html'
          ? {
              'Content-Security-Policy':
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
            }
          : {}),
      },
    };
  }
}
