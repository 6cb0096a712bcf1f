/**
 * Start-up A/B (issue 17): two builds of the agent started in turn, run after run, so that the
 * machine's changing speed falls on both alike. Prints, per build, the medians of exec to the first
 * /metrics 200 and to `nginx_up 1` for a real nginx, and of `agent version`. Prints figures; asserts
 * nothing.
 *
 *   node --import tsx scripts/bench/startup-ab.ts --other /path/to/other/checkout [--runs 15] [--wasm]
 *
 * Set NODE_EXTRA_CA_CERTS or not in the calling shell: the agents inherit it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TestNginx } from '../../core/testing/nginx.js';
import { numberArg, stringArg } from './args.js';
import { AGENT_BIN, isolate, median, range, startAgent, waitForMetrics } from './daemons.js';

await isolate(import.meta.filename);
const RUNS = numberArg('--runs', 15);
const other = stringArg('--other');
if (!other) {
  console.error('--other /path/to/checkout is needed (a built checkout to compare with this one)');
  process.exit(1);
}
const wasm = process.argv.includes('--wasm');
const builds = [
  { label: 'this checkout', bin: AGENT_BIN },
  { label: other, bin: join(other, 'bin', 'agent.js') },
];
const figures = builds.map(() => ({ first: [] as number[], up: [] as number[], version: [] as number[] }));
const nginx = await TestNginx.start();
console.log(
  `# startup A/B, ${new Date().toISOString()}, ${RUNS} runs each, Wasm ${wasm ? 'on' : 'off'},` +
    ` NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'unset'}`,
);
for (let i = 0; i < RUNS; i++) {
  for (const [b, build] of builds.entries()) {
    const t0 = performance.now();
    const d = await startAgent({ wasm, bin: build.bin });
    figures[b]!.first.push(await waitForMetrics(d, t0, (s) => s === 200));
    const re = d.nginxUp!;
    figures[b]!.up.push(await waitForMetrics(d, t0, (s, text) => s === 200 && re.test(text)));
    await d.stop();
    const v0 = performance.now();
    spawnSync(build.bin, ['version'], { stdio: 'ignore' });
    figures[b]!.version.push(performance.now() - v0);
  }
}
await nginx.stop();
const fmt = (xs: number[]) => `${median(xs).toFixed(0)} (${range(xs)})`;
console.log('| build | exec to first /metrics 200, ms | exec to nginx_up 1, ms | agent version, ms |');
console.log('|---|---|---|---|');
for (const [b, build] of builds.entries()) {
  const f = figures[b]!;
  console.log(`| ${build.label} | ${fmt(f.first)} | ${fmt(f.up)} | ${fmt(f.version)} |`);
}
