/**
 * Benchmark of the nginx config parser on generated configs of 100 KB, 1 MB and 10 MB (many
 * servers, locations, upstreams, maps, quoted args and comments). Prints ms per parse and MB/s.
 *
 *   npx tsx scripts/bench/config-parse.ts [--runs N]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNginxConfig, parseNginxText } from '../../core/nginx/config/parse.js';

function server(i: number): string {
  return `
# server ${i}
upstream app_${i} {
    zone app_${i} 64k;
    server 10.${i % 250}.0.1:8080 weight=5 max_fails=3 fail_timeout=30s;
    server 10.${i % 250}.0.2:8080;
    keepalive 16;
}
server {
    listen ${8000 + (i % 1000)};
    listen [::]:${8000 + (i % 1000)};
    server_name site${i}.example.test www.site${i}.example.test;
    access_log /var/log/nginx/site${i}.log main;
    set $greeting "hello \\"site ${i}\\"";
    location / {
        proxy_pass http://app_${i};
        proxy_set_header Host \${host};
        proxy_set_header X-Real-IP $remote_addr;
        if ($request_method = POST) { return 405; }
    }
    location ~* \\.(?:css|js|png)$ { expires 30d; add_header Cache-Control 'public'; }
    location = /health { return 200 "ok\\n"; }
}
`;
}

function generate(bytes: number): string {
  const head = `worker_processes auto;\nevents { worker_connections 1024; }\nhttp {\n    log_format main '$remote_addr - $remote_user [$time_local] "$request" '\n                    '$status $body_bytes_sent';\n    map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n`;
  const parts = [head];
  let size = head.length;
  for (let i = 0; size < bytes; i++) {
    const s = server(i);
    parts.push(s);
    size += s.length;
  }
  parts.push('}\n');
  return parts.join('');
}

async function main(): Promise<void> {
  const ri = process.argv.indexOf('--runs');
  const runs = ri > 0 ? Math.max(1, Number(process.argv[ri + 1]) || 5) : 5;
  const dir = await mkdtemp(join(tmpdir(), 'bench-config-'));
  try {
    console.log(`runs per size: ${runs} (best and median reported)`);
    console.log('size      bytes        directives  best ms  median ms  MB/s (best)  via file ms');
    for (const [label, target] of [
      ['100 KB', 100 * 1024],
      ['1 MB', 1024 * 1024],
      ['10 MB', 10 * 1024 * 1024],
    ] as const) {
      const text = generate(target);
      const path = join(dir, `nginx-${target}.conf`);
      await writeFile(path, text);
      let directives = 0;
      const times: number[] = [];
      for (let r = 0; r < runs + 1; r++) {
        const t0 = process.hrtime.bigint();
        const p = parseNginxText(text, path);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r > 0) times.push(ms); // first run warms the JIT
        if (p.status !== 'ok')
          throw new Error(`generated config failed to parse: ${JSON.stringify(p.errors.slice(0, 3))}`);
        if (r === 0) {
          const count = (l: { block?: unknown[] }[]): number =>
            l.reduce((n, d) => n + 1 + (d.block ? count(d.block as { block?: unknown[] }[]) : 0), 0);
          directives = count(p.config[0].parsed);
        }
      }
      times.sort((a, b) => a - b);
      const best = times[0];
      const median = times[Math.floor(times.length / 2)];
      const t0 = process.hrtime.bigint();
      await parseNginxConfig(path);
      const fileMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const mb = text.length / (1024 * 1024);
      console.log(
        `${label.padEnd(9)} ${String(text.length).padEnd(12)} ${String(directives).padEnd(11)} ${best.toFixed(1).padStart(7)}  ${median.toFixed(1).padStart(9)}  ${(mb / (best / 1000)).toFixed(1).padStart(11)}  ${fileMs.toFixed(1).padStart(11)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
