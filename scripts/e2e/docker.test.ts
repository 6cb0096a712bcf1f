/**
 * The image is built and run by scripts/container-e2e.sh (podman, in CI); here the Dockerfile and the
 * sidecar examples are checked for structure:
 * Dockerfile stages, non-root user, health check, no secrets, pinned tags; the compose file and the
 * Kubernetes pod spec parse and wire nginx and the agent as documented; their nginx config passes the
 * real `nginx -t` and their agent config passes `agent config check`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT, runAgent } from '../../core/testing/agent-process.js';
import { NGINX_BIN, needNginx } from '../../core/testing/nginx.js';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions (continuations joined, comments dropped), each with its stage index. */
export function parseDockerfile(text: string): { instructions: Instruction[]; args: Map<string, string> } {
  const logical: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    cur += line;
    if (cur.trim()) logical.push(cur.trim());
    cur = '';
  }
  const args = new Map<string, string>();
  const instructions: Instruction[] = [];
  let stage = -1;
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const op = m[1].toUpperCase();
    if (op === 'FROM') stage++;
    if (op === 'ARG' && stage === -1) {
      const [k, v] = m[2].split('=', 2);
      args.set(k, v ?? '');
    }
    instructions.push({ op, args: m[2], stage });
  }
  return { instructions, args };
}

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const { instructions, args } = parseDockerfile(dockerfile);
const froms = instructions.filter((i) => i.op === 'FROM');
const image = (from: Instruction) =>
  from.args.split(/\s+/)[0].replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '');
const stageName = (from: Instruction) => /\bAS\s+(\S+)/i.exec(from.args)?.[1];
const lastStage = froms.length - 1;
const inStage = (name: string) => instructions.filter((i) => i.stage === froms.findIndex((f) => stageName(f) === name));

describe('Dockerfile', () => {
  test('is multi-stage: a build stage compiles TypeScript and Wasm on the official Node LTS slim image; the runtime holds only node and the agent', () => {
    assert.ok(froms.length >= 2, 'at least two stages');
    const build = inStage('build');
    assert.ok(build.length > 0, 'a stage named build');
    assert.ok(
      build.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args)),
      'build stage runs npm ci',
    );
    assert.ok(
      build.some((i) => i.op === 'RUN' && /\bnpm run build\b/.test(i.args)),
      'build stage runs npm run build (TypeScript + Wasm)',
    );
    assert.match(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).scripts.build, /build:wasm/);
    assert.match(args.get('NODE_IMAGE') ?? '', /^node:20(\.\d+)*-(bookworm-)?slim$/);
    // No shell, no package manager in the runtime: node, the libraries it links, CA certificates.
    assert.equal(image(froms[lastStage]), 'scratch');
    assert.ok(
      inStage('rootfs').some((i) => i.op === 'RUN' && /ldd/.test(i.args) && /ca-certificates\.crt/.test(i.args)),
      'the rootfs stage collects node, its shared libraries and the CA bundle',
    );
    const runtime = instructions.filter((i) => i.stage === lastStage);
    assert.ok(
      runtime.some((i) => i.op === 'COPY' && /--from=build\b.*\bdist\b/.test(i.args)),
      'runtime copies the compiled dist from the build stage',
    );
    assert.ok(
      runtime.some((i) => i.op === 'COPY' && /--from=deps\b.*node_modules/.test(i.args)),
      'runtime copies production node_modules',
    );
    assert.ok(
      instructions.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args)),
      'production dependencies only',
    );
    assert.ok(
      !runtime.some((i) => i.op === 'COPY' && /^\.\s/.test(i.args)),
      'the runtime does not copy the whole source tree',
    );
  });

  test('every base image has a pinned tag, never latest', () => {
    for (const f of froms) {
      const img = image(f);
      if (froms.some((o) => stageName(o) === img) || img === 'scratch') continue;
      assert.match(img, /^[\w./-]+:[\w.-]+$/, `${img} has a tag`);
      assert.doesNotMatch(img, /:latest$/, `${img} is not :latest`);
    }
  });

  test('runs as a non-root user, with a health check on /health and the agent as entry point', () => {
    const runtime = instructions.filter((i) => i.stage === lastStage);
    const user = runtime.filter((i) => i.op === 'USER').at(-1);
    assert.ok(user, 'USER in the runtime stage');
    assert.doesNotMatch(user.args, /^(root|0)(:|$)/);
    assert.match(user.args, /^\d+:\d+$/, 'numeric uid:gid so Kubernetes runAsNonRoot can check it');
    const hc = runtime.find((i) => i.op === 'HEALTHCHECK');
    assert.ok(hc);
    assert.match(hc.args, /CMD .*node.*\/health/);
    assert.doesNotMatch(hc.args, /\bcurl\b|\bwget\b/, 'slim images have neither');
    assert.match(runtime.find((i) => i.op === 'ENTRYPOINT')!.args, /bin\/agent\.js/);
    // Flags would override a mounted config file: the command names only the config file.
    assert.equal(
      runtime.find((i) => i.op === 'CMD')!.args,
      '["start", "--config", "/etc/nginx-agent/nginx-agent.yaml"]',
    );
    const env = runtime
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.doesNotMatch(env, /NGINX_AGENT_/, 'settings in ENV would override a mounted config file');
    assert.ok(
      runtime.some((i) => i.op === 'VOLUME' && /\/var\/lib\/nginx-agent/.test(i.args)),
      'the state directory is a volume (the root file system may be read-only)',
    );
  });

  test('the shipped config file holds the image settings and passes agent config check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'image-config-'));
    try {
      const f = join(dir, 'nginx-agent.yaml');
      execFileSync(process.execPath, [
        join(REPO_ROOT, 'scripts', 'image-config.mjs'),
        join(REPO_ROOT, 'config', 'agent.yaml'),
        f,
      ]);
      const cfg = parse(readFileSync(f, 'utf8'));
      assert.equal(cfg.api.host, '0.0.0.0');
      assert.equal(cfg.api.port, 8039);
      assert.equal(cfg.log.format, 'json');
      assert.deepEqual(cfg.wasm.dirs, ['/opt/nginx-agent/wasm-plugins', '/var/lib/nginx-agent/plugins']);
      const check = await runAgent(['config', 'check', '--config', f]);
      assert.equal(check.code, 0, check.stderr);
      // An environment variable a user sets still wins over the file.
      const env = await runAgent(['config', 'check', '--config', f], { NGINX_AGENT_API_PORT: '9001' });
      assert.match(env.stdout, /port: 9001/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('holds no secrets', () => {
    for (const i of instructions.filter((x) => ['ENV', 'ARG', 'LABEL'].includes(x.op))) {
      assert.doesNotMatch(i.args, /token|passw|secret|api[_-]?key|private/i, `${i.op} ${i.args}`);
    }
    assert.doesNotMatch(dockerfile, /Bearer\s+\w/);
  });

  test('.dockerignore keeps build outputs, git and local secrets out of the context', () => {
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const p of ['node_modules', 'dist', '.git', '**/*.wasm', '.env'])
      assert.ok(ignore.includes(p), `.dockerignore has ${p}`);
  });
});

const SIDECAR = join(REPO_ROOT, 'examples', 'sidecar');

/** Runs the real `nginx -t` on an example config rewritten to a temporary prefix. */
function nginxT(conf: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-nginx-'));
  try {
    mkdirSync(join(dir, 'logs'));
    const local = conf
      .replace(/^\s*user\s+\S+;\s*$/m, '')
      .replaceAll('/var/log/nginx/', `${dir}/logs/`)
      .replace('/var/run/nginx.pid', `${dir}/nginx.pid`)
      .replace(/listen 80;/g, 'listen 127.0.0.1:1080;')
      .replace(
        'http {',
        `http {\n    client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc; uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;`,
      );
    writeFileSync(join(dir, 'nginx.conf'), local);
    execFileSync(NGINX_BIN, ['-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('examples/sidecar', () => {
  test('docker-compose.yml: nginx and the agent share process and network namespaces; nginx files read-only', () => {
    const c = parse(readFileSync(join(SIDECAR, 'docker-compose.yml'), 'utf8')) as {
      volumes?: Record<string, unknown>;
      services: Record<
        string,
        {
          image?: string;
          pid?: string;
          network_mode?: string;
          volumes?: (string | { target: string; read_only?: boolean; source?: string })[];
          build?: unknown;
          user?: string;
        }
      >;
    };
    const nginx = c.services.nginx;
    const agent = c.services.agent;
    assert.match(nginx.image!, /^nginx:[\w.-]+$/, 'the official nginx image, tagged');
    assert.doesNotMatch(nginx.image!, /:latest$/);
    assert.equal(agent.pid, 'service:nginx');
    assert.equal(agent.network_mode, 'service:nginx');
    assert.doesNotMatch(agent.image ?? '', /:latest$/);
    const mounts = (agent.volumes ?? []).map((v) =>
      typeof v === 'string'
        ? { target: v.split(':')[1], ro: v.split(':')[2] === 'ro' }
        : { target: v.target, ro: v.read_only === true },
    );
    const at = (t: string) => mounts.find((m) => m.target === t);
    assert.equal(at('/etc/nginx/nginx.conf')?.ro, true, 'nginx config read-only in the agent');
    // The whole config directory (mime.types, conf.d): nginx's /etc/nginx volume, read-only in the agent.
    const sourceAt = (svc: typeof nginx, t: string) =>
      (svc.volumes ?? [])
        .map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v))
        .find((v) => v.target === t)?.source;
    assert.equal(at('/etc/nginx')?.ro, true, "nginx's config directory read-only in the agent");
    assert.ok(sourceAt(nginx, '/etc/nginx'), "nginx's /etc/nginx is a named volume");
    assert.equal(sourceAt(agent, '/etc/nginx'), sourceAt(nginx, '/etc/nginx'), 'the same volume in both');
    assert.ok(c.volumes?.[sourceAt(nginx, '/etc/nginx')!], 'declared as a named volume');
    assert.equal(sourceAt(agent, '/etc/nginx/nginx.conf'), sourceAt(nginx, '/etc/nginx/nginx.conf'));
    assert.equal(at('/var/log/nginx')?.ro, true, 'nginx logs read-only in the agent');
    assert.ok(at('/etc/nginx-agent/nginx-agent.yaml'), 'agent config mounted');
    assert.ok(at('/var/lib/nginx-agent/plugins'), 'plugins dir mounted');
  });

  test('kubernetes.yaml: shareProcessNamespace, official nginx, non-root agent with read-only nginx mounts and /health probes', () => {
    const docs = parseAllDocuments(readFileSync(join(SIDECAR, 'kubernetes.yaml'), 'utf8')).map((d) => d.toJS());
    const pod = docs.find((d) => d.kind === 'Pod');
    assert.ok(pod);
    assert.equal(pod.spec.shareProcessNamespace, true);
    const byName = Object.fromEntries(pod.spec.containers.map((c: { name: string }) => [c.name, c]));
    assert.match(byName.nginx.image, /^nginx:[\w.-]+$/);
    for (const c of pod.spec.containers) assert.doesNotMatch(c.image, /:latest$|^[^:]+$/, `${c.name} image tagged`);
    const agent = byName.agent;
    assert.equal(agent.securityContext.runAsNonRoot, true);
    const uid = /^USER (\d+):/m.exec(dockerfile)![1];
    assert.equal(String(agent.securityContext.runAsUser), uid, 'same uid as the image');
    assert.equal(agent.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(agent.securityContext.capabilities.drop, ['ALL']);
    const mount = (name: string) => agent.volumeMounts.find((m: { name: string }) => m.name === name);
    assert.equal(mount('nginx-conf').readOnly, true);
    // The whole config directory: the nginx image's /etc/nginx copied by an init container into a volume
    // both mount there (read-only in the agent), the ConfigMap's nginx.conf over it in both.
    assert.equal(mount('nginx-etc').mountPath, '/etc/nginx');
    assert.equal(mount('nginx-etc').readOnly, true);
    const nginxMount = (name: string) => byName.nginx.volumeMounts.find((m: { name: string }) => m.name === name);
    assert.equal(nginxMount('nginx-etc').mountPath, '/etc/nginx');
    assert.equal(nginxMount('nginx-conf').mountPath, mount('nginx-conf').mountPath);
    const init = (pod.spec.initContainers ?? []).find((c: { volumeMounts?: { name: string }[] }) =>
      c.volumeMounts?.some((m) => m.name === 'nginx-etc'),
    );
    assert.equal(init?.image, byName.nginx.image, "the init container copies the nginx image's own files");
    assert.match(init.command.join(' '), /\/etc\/nginx\/\. /);
    assert.equal(mount('nginx-logs').readOnly, true);
    assert.equal(mount('nginx-logs').mountPath, '/var/log/nginx');
    assert.equal(agent.livenessProbe.httpGet.path, '/health');
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'nginx-conf');
    assert.match(
      cm.data['nginx.conf'],
      /listen 127\.0\.0\.1:8080;[\s\S]*stub_status;/,
      'stub_status on localhost only',
    );
  });

  test('the examples nginx configs pass the real nginx -t', { skip: needNginx() }, () => {
    nginxT(readFileSync(join(SIDECAR, 'nginx', 'nginx.conf'), 'utf8'));
    const docs = parseAllDocuments(readFileSync(join(SIDECAR, 'kubernetes.yaml'), 'utf8')).map((d) => d.toJS());
    nginxT(docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'nginx-conf').data['nginx.conf']);
  });

  test('the examples agent configs pass agent config check', async () => {
    const compose = await runAgent(['config', 'check', '--config', join(SIDECAR, 'agent', 'nginx-agent.yaml')]);
    assert.equal(compose.code, 0, compose.stderr);
    const docs = parseAllDocuments(readFileSync(join(SIDECAR, 'kubernetes.yaml'), 'utf8')).map((d) => d.toJS());
    const dir = mkdtempSync(join(tmpdir(), 'sidecar-agent-'));
    try {
      const f = join(dir, 'nginx-agent.yaml');
      writeFileSync(
        f,
        docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'nginx-agent-conf').data['nginx-agent.yaml'],
      );
      const k8s = await runAgent(['config', 'check', '--config', f]);
      assert.equal(k8s.code, 0, k8s.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
