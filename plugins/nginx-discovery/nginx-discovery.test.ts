import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { CounterMetric, GaugeMetric, MetricBatch } from '../../core/metrics/model.js';
import type { NginxInstanceEvent } from '../../core/nginx/types.js';
import { startPlugin } from '../../core/testing/plugin-harness.js';
import { needNginx, TestNginx } from '../../core/testing/nginx.js';
import { configChangedFixture } from '../../core/testing/nginx-fixtures.js';
import { BinaryInfoCache } from './binary-info.js';
import { findInPath, NginxDiscovery } from './discovery.js';
import { healthChange, plugin, type NginxDiscoveryPlugin } from './index.js';
import {
  nginxInstanceId,
  parseMasterArgs,
  parseNginxV,
  parseProcessTitle,
  parseStat,
  parseWorkerProcesses,
  parseStatusRss,
  resolveInstancePaths,
  splitShellWords,
  workerProcessesFromGlobals,
} from './parse.js';
import { ProcReader } from './proc.js';

const here = import.meta.dirname;
const td = (f: string) => join(here, 'testdata', f);

describe('parsers', () => {
  test('parseStat counts fields from the last parenthesis (names with spaces and parentheses)', () => {
    const st = parseStat(
      '4242 (nginx: a (b) c) S 1 4242 4242 0 -1 4194368 27 0 0 0 15 7 0 0 20 0 1 0 1257427 10502144 359 18446744073709551615 0',
    );
    assert.deepEqual(st, {
      pid: 4242,
      comm: 'nginx: a (b) c',
      state: 'S',
      ppid: 1,
      utimeTicks: 15,
      stimeTicks: 7,
      startTicks: 1257427,
    });
    assert.equal(parseStat('garbage'), null);
    assert.equal(parseStat('12 (x) S 1 2'), null);
  });

  test('parseStatusRss reads VmRSS in kB as bytes, null without it', () => {
    assert.equal(parseStatusRss('Name:\tnginx\nVmRSS:\t    3672 kB\n'), 3672 * 1024);
    assert.equal(parseStatusRss('Name:\tnginx\nState:\tZ (zombie)\n'), null);
  });

  test('parseProcessTitle: master, workers, helpers; raw argv and empty command lines are not titles', () => {
    const m = parseProcessTitle('nginx: master process /usr/sbin/nginx -p /tmp/x/ -c conf/nginx.conf\0\0\0');
    assert.deepEqual(m, { role: 'master', argv: ['/usr/sbin/nginx', '-p', '/tmp/x/', '-c', 'conf/nginx.conf'] });
    assert.equal(parseProcessTitle('nginx: worker process\0\0')?.role, 'worker');
    assert.equal(parseProcessTitle('nginx: worker process is shutting down\0')?.role, 'worker-shutting-down');
    assert.equal(parseProcessTitle('nginx: cache manager process')?.role, 'cache-manager');
    assert.equal(parseProcessTitle('/usr/sbin/nginx\0-t\0'), null);
    assert.equal(parseProcessTitle(''), null);
    assert.equal(parseProcessTitle('nginx-helper: master process'), null);
  });

  test('parseMasterArgs: -p, -c (joined or separate), -g spanning tokens, -e', () => {
    assert.deepEqual(
      parseMasterArgs([
        '/usr/sbin/nginx',
        '-p',
        '/srv/',
        '-c',
        'conf/nginx.conf',
        '-g',
        'daemon',
        'off;',
        'worker_processes',
        '2;',
      ]),
      {
        binary: '/usr/sbin/nginx',
        prefix: '/srv/',
        conf: 'conf/nginx.conf',
        globals: 'daemon off; worker_processes 2;',
      },
    );
    assert.deepEqual(parseMasterArgs(['nginx', '-g', 'daemon', 'off;', '-cconf/a.conf', '-e', 'stderr']), {
      binary: 'nginx',
      conf: 'conf/a.conf',
      globals: 'daemon off;',
      errorLog: 'stderr',
    });
    assert.deepEqual(parseMasterArgs(['nginx']), { binary: 'nginx' });
  });

  test('resolveInstancePaths: -c relative to -p, --conf-path and --prefix from -V, relative -p against the cwd', () => {
    assert.deepEqual(resolveInstancePaths({ binary: 'nginx', prefix: '/srv/site/', conf: 'conf/nginx.conf' }, {}), {
      prefix: '/srv/site',
      confPath: '/srv/site/conf/nginx.conf',
    });
    assert.deepEqual(
      resolveInstancePaths({ binary: 'nginx' }, { prefix: '/usr/share/nginx', confPath: '/etc/nginx/nginx.conf' }),
      {
        prefix: '/usr/share/nginx',
        confPath: '/etc/nginx/nginx.conf',
      },
    );
    assert.deepEqual(
      resolveInstancePaths({ binary: 'nginx', prefix: 'site' }, { confPath: 'conf/x.conf' }, '/home/u'),
      { prefix: '/home/u/site', confPath: '/home/u/site/conf/x.conf' },
    );
    assert.deepEqual(resolveInstancePaths({ binary: 'nginx' }, {}), {
      prefix: '/usr/local/nginx',
      confPath: '/usr/local/nginx/conf/nginx.conf',
    });
  });

  test('splitShellWords keeps quoted arguments whole and drops the quotes', () => {
    assert.deepEqual(splitShellWords(` --with-cc-opt='-g -O2' --prefix=/usr "--a=b c" x\\ y`), [
      '--with-cc-opt=-g -O2',
      '--prefix=/usr',
      '--a=b c',
      'x y',
    ]);
  });

  test('parseNginxV on the recorded Debian nginx -V', async () => {
    const v = parseNginxV(await readFile(td('nginx-V-oss.txt'), 'utf8'));
    assert.equal(v.version, '1.22.1');
    assert.equal(v.plus, false);
    assert.equal(v.prefix, '/usr/share/nginx');
    assert.equal(v.confPath, '/etc/nginx/nginx.conf');
    assert.equal(v.modulesPath, '/usr/lib/nginx/modules');
    assert.ok(
      v.configureArgs.includes(
        '--with-cc-opt=-g -O2 -ffile-prefix-map=/build/reproducible-path/nginx-1.22.1=. -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2',
      ),
    );
    assert.ok(v.staticModules.includes('http_stub_status_module'));
    assert.ok(v.staticModules.includes('http_ssl_module'));
    assert.ok(!v.staticModules.includes('http_geoip_module'));
    assert.deepEqual(v.dynamicModules, [
      'http_geoip_module',
      'http_image_filter_module',
      'http_perl_module',
      'http_xslt_module',
      'stream_geoip_module',
    ]);
  });

  test('parseNginxV on a Plus-looking nginx -V', async () => {
    const v = parseNginxV(await readFile(td('nginx-V-plus.txt'), 'utf8'));
    assert.equal(v.version, '1.25.3');
    assert.equal(v.plus, true);
    assert.equal(v.plusRelease, 'nginx-plus-r31-p1');
    assert.equal(v.prefix, '/etc/nginx');
    assert.ok(v.staticModules.includes('http_auth_jwt_module'));
  });

  test('parseNginxV names what it got when the text is not nginx -V', () => {
    assert.throws(
      () => parseNginxV('Usage: foo [options]\n'),
      /expected a line "nginx version: nginx\/X.Y.Z", got "Usage: foo \[options\]"/,
    );
  });

  test('instance id: sha256 of binary, conf, prefix; 16 hex; differs per part', () => {
    const a = nginxInstanceId('/usr/sbin/nginx', '/etc/nginx/nginx.conf', '/usr/share/nginx');
    assert.match(a, /^[0-9a-f]{16}$/);
    assert.equal(a, nginxInstanceId('/usr/sbin/nginx', '/etc/nginx/nginx.conf', '/usr/share/nginx'));
    assert.notEqual(a, nginxInstanceId('/usr/sbin/nginx', '/etc/nginx/other.conf', '/usr/share/nginx'));
    assert.notEqual(a, nginxInstanceId('/usr/sbin/nginx-debug', '/etc/nginx/nginx.conf', '/usr/share/nginx'));
  });

  test('a bare argv[0] is looked up in PATH and the sbin directories', { skip: needNginx() }, () => {
    assert.equal(findInPath('nginx', '/nonexistent'), '/usr/sbin/nginx');
    assert.equal(findInPath('no-such-binary-here', '/nonexistent'), 'no-such-binary-here');
    assert.equal(findInPath('./nginx', '/usr/sbin'), './nginx');
  });

  test('worker_processes from -g; auto is not checked', () => {
    assert.equal(parseWorkerProcesses(workerProcessesFromGlobals('daemon on; worker_processes 2;')), 2);
    assert.equal(parseWorkerProcesses('auto'), undefined);
    assert.equal(parseWorkerProcesses(undefined), undefined);
    assert.equal(workerProcessesFromGlobals('daemon off;'), undefined);
  });
});

/** Discovery over a copy of the fixture /proc tree, with -V answered from the recorded output. */
async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), 'proc-fixture-'));
  await cp(td('proc'), dir, { recursive: true, verbatimSymlinks: true });
  const oss = await readFile(td('nginx-V-oss.txt'), 'utf8');
  const runs: string[] = [];
  const binaries = new BinaryInfoCache({
    timeoutMs: 1000,
    run: async (file) => {
      runs.push(file);
      return oss;
    },
  });
  let now = 1_000_000;
  const d = new NginxDiscovery({ reader: new ProcReader(dir), binaries, oldGenerationGraceMs: 60_000, now: () => now });
  return {
    dir,
    d,
    runs,
    advance: (ms: number) => (now += ms),
    async setStat(pid: number, fn: (fields: string[]) => void) {
      const p = join(dir, String(pid), 'stat');
      const text = await readFile(p, 'utf8');
      const close = text.lastIndexOf(')');
      const f = text
        .slice(close + 2)
        .trim()
        .split(' ');
      fn(f);
      await writeFile(p, `${text.slice(0, close + 1)} ${f.join(' ')}\n`);
    },
    async setTitle(pid: number, title: string) {
      await writeFile(join(dir, String(pid), 'cmdline'), `${title}\0\0\0`);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

const metricOf = (b: MetricBatch, name: string) =>
  b.metrics.find((m) => m.name === name) as CounterMetric | GaugeMetric | undefined;

describe('discovery over fixture /proc trees', () => {
  test('finds the real master, rejects the fake ones, the nginx -t process and reads -V once', async () => {
    const f = await fixture();
    try {
      const r = await f.d.poll();
      const added = r.events.filter((e) => e.topic === 'nginx.instance.added').map((e) => e.data.instance);
      assert.deepEqual(added.map((i) => i.pid).sort(), [100, 400], 'the master at 100 and the zombie master at 400');
      const i = added.find((x) => x.pid === 100)!;
      assert.equal(i.binary, '/usr/sbin/nginx');
      assert.equal(i.prefix, '/srv/site');
      assert.equal(i.confPath, '/srv/site/conf/nginx.conf');
      assert.equal(i.globalDirectives, 'daemon on; worker_processes 2;');
      assert.equal(i.id, nginxInstanceId('/usr/sbin/nginx', '/srv/site/conf/nginx.conf', '/srv/site'));
      assert.equal(i.version, '1.22.1');
      assert.equal(i.plus, false);
      assert.ok(i.modules.includes('http_stub_status_module') && i.modules.includes('http_geoip_module'));
      assert.deepEqual(
        i.workers.map((w) => w.pid),
        [101, 102],
        'workers only: the cache manager is no worker',
      );
      assert.equal(i.health, 'HEALTHY');
      assert.equal(f.d.lastScan.rejected, 1, 'the python process that renamed itself nginx');
      // The zombie master has no readable exe: its argv[0] names the binary; its config path uses the -V prefix.
      const z = added.find((x) => x.pid === 400)!;
      assert.equal(z.health, 'UNHEALTHY');
      assert.match(z.healthReason!, /master process 400 is a zombie/);
      assert.equal(z.confPath, '/etc/nginx/zombie.conf');

      const b = r.batches.find((x) => x.source === `nginx-discovery:${i.id}`)!;
      assert.deepEqual(b.resource, { 'nginx.instance.id': i.id });
      assert.deepEqual(
        metricOf(b, 'nginx.worker.cpu.time')!.points.map((p) => [p.attributes['cpu.mode'], p.value]),
        [
          ['user', 4],
          ['system', 1],
        ],
      );
      assert.equal(metricOf(b, 'nginx.worker.memory.usage')!.points[0].value, 8000 * 1024);
      assert.equal(metricOf(b, 'nginx.worker.open_file_descriptors')!.points[0].value, 22);
      assert.deepEqual(
        metricOf(b, 'nginx.worker.count')!.points.map((p) => [p.attributes.state, p.value]),
        [
          ['running', 2],
          ['shutting_down', 0],
        ],
      );

      await f.d.poll();
      assert.equal(f.runs.length, 1, 'nginx -V ran once for the one binary path over two polls');
    } finally {
      await f.cleanup();
    }
  });

  test('reload: a new worker generation publishes reloaded; old workers beyond the grace make it DEGRADED; CPU stays monotonic', async () => {
    const f = await fixture();
    try {
      const first = await f.d.poll();
      const id = first.events.find((e) => e.data.instance.pid === 100)!.data.instance.id;
      // Reload: 101 drains as an old worker, 102 exited, 104 and 105 are the new generation.
      await f.setTitle(101, 'nginx: worker process is shutting down');
      await rm(join(f.dir, '102'), { recursive: true });
      for (const pid of [104, 105]) {
        await cp(join(f.dir, '101'), join(f.dir, String(pid)), { recursive: true, verbatimSymlinks: true });
        await f.setTitle(pid, 'nginx: worker process');
        await f.setStat(pid, (x) => {
          x[11] = '10';
          x[12] = '0';
          x[19] = '5000';
        });
        const st = await readFile(join(f.dir, String(pid), 'stat'), 'utf8');
        await writeFile(join(f.dir, String(pid), 'stat'), st.replace(/^101 /, `${pid} `));
      }
      f.advance(5000);
      const r = await f.d.poll();
      const topics = r.events.filter((e) => e.data.instance.id === id).map((e) => e.topic);
      assert.deepEqual(topics, ['nginx.instance.reloaded']);
      const inst = r.events[0].data.instance;
      assert.deepEqual(inst.workers.map((w) => w.pid).sort(), [101, 104, 105]);
      assert.equal(inst.health, 'HEALTHY', 'draining old workers right after a reload are normal');
      const b = r.batches.find((x) => x.source === `nginx-discovery:${id}`)!;
      // 102 exited with 2.5 s user: kept; 101 1.5 s; 104 and 105 0.1 s each.
      assert.equal(metricOf(b, 'nginx.worker.cpu.time')!.points[0].value, 4.2);
      assert.deepEqual(
        metricOf(b, 'nginx.worker.count')!.points.map((p) => p.value),
        [2, 1],
      );

      f.advance(61_000);
      const late = await f.d.poll();
      const h = late.events.find((e) => e.topic === 'nginx.instance.health' && e.data.instance.id === id);
      assert.ok(h, 'a health event once the old generation outlived the grace');
      assert.equal(h.data.instance.health, 'DEGRADED');
      assert.equal(h.data.previousHealth, 'HEALTHY');
      assert.match(h.data.instance.healthReason!, /older generation still running 6\d s after a reload/);
    } finally {
      await f.cleanup();
    }
  });

  test('a just-forked worker still titled master is no second master; a binary upgrade (USR2) is DEGRADED until the old master quits', async () => {
    const f = await fixture();
    const clone = async (from: number, to: number, ppid: number, title: string) => {
      await cp(join(f.dir, String(from)), join(f.dir, String(to)), { recursive: true, verbatimSymlinks: true });
      const st = await readFile(join(f.dir, String(to), 'stat'), 'utf8');
      await writeFile(join(f.dir, String(to), 'stat'), st.replace(new RegExp(`^${from} `), `${to} `));
      await f.setStat(to, (x) => {
        x[1] = String(ppid);
        x[19] = '7000';
      });
      await f.setTitle(to, title);
    };
    try {
      await f.d.poll();
      const master =
        'nginx: master process /usr/sbin/nginx -p /srv/site/ -c conf/nginx.conf -g daemon on; worker_processes 2;';
      await clone(100, 110, 100, master);
      let r = await f.d.poll();
      assert.deepEqual(r.events, [], 'a child wearing the master title, without workers: a worker being born');

      await clone(101, 111, 110, 'nginx: worker process');
      await clone(101, 112, 110, 'nginx: worker process');
      r = await f.d.poll();
      const h = r.events.find((e) => e.topic === 'nginx.instance.health')!;
      assert.equal(h.data.instance.pid, 100, 'the original master stays the instance');
      assert.equal(h.data.instance.health, 'DEGRADED');
      assert.equal(
        h.data.instance.healthReason,
        'binary upgrade in progress: a second master process 110 runs beside 100',
      );

      // The old master quits: the new one is the instance now (a new process: removed, then added).
      for (const pid of [100, 101, 102, 103]) await rm(join(f.dir, String(pid)), { recursive: true });
      await f.setStat(110, (x) => (x[1] = '1'));
      r = await f.d.poll();
      const mine = r.events.filter((e) => e.data.instance.id === h.data.instance.id);
      assert.deepEqual(
        mine.map((e) => [e.topic, e.data.instance.pid]),
        [
          ['nginx.instance.removed', 100],
          ['nginx.instance.added', 110],
        ],
      );
      assert.equal(mine[1].data.instance.health, 'HEALTHY');
    } finally {
      await f.cleanup();
    }
  });

  test('a master without workers is announced at the second scan (not during start-up), then UNHEALTHY', async () => {
    const f = await fixture();
    try {
      for (const pid of [101, 102]) await rm(join(f.dir, String(pid)), { recursive: true });
      let r = await f.d.poll();
      assert.ok(!r.events.some((e) => e.data.instance.pid === 100));
      r = await f.d.poll();
      const a = r.events.find((e) => e.data.instance.pid === 100)!;
      assert.equal(a.topic, 'nginx.instance.added');
      assert.equal(a.data.instance.health, 'UNHEALTHY');
      assert.equal(a.data.instance.healthReason, 'master process 100 has no worker processes: nothing serves requests');
    } finally {
      await f.cleanup();
    }
  });

  test('a binary replaced on disk (exe "(deleted)"): -V runs the running executable through /proc/PID/exe', async () => {
    const f = await fixture();
    try {
      await rm(join(f.dir, '100', 'exe'));
      await symlink('/usr/sbin/nginx (deleted)', join(f.dir, '100', 'exe'));
      const r = await f.d.poll();
      const i = r.events.find((e) => e.data.instance.pid === 100)!.data.instance;
      assert.equal(i.binary, '/usr/sbin/nginx', 'the id keeps the path');
      assert.ok(f.runs.includes(join(f.dir, '100', 'exe')), `ran ${f.runs.join(', ')}`);
    } finally {
      await f.cleanup();
    }
  });

  test('one crashed worker respawned by the master is no reload', async () => {
    const f = await fixture();
    try {
      await f.d.poll();
      await rm(join(f.dir, '102'), { recursive: true });
      await cp(join(f.dir, '101'), join(f.dir, '106'), { recursive: true, verbatimSymlinks: true });
      const st = await readFile(join(f.dir, '106', 'stat'), 'utf8');
      await writeFile(join(f.dir, '106', 'stat'), st.replace(/^101 /, '106 '));
      await f.setStat(106, (x) => (x[19] = '9000'));
      const r = await f.d.poll();
      assert.deepEqual(r.events, []);
      assert.deepEqual(
        f.d
          .instances()
          .find((i) => i.pid === 100)!
          .workers.map((w) => w.pid),
        [101, 106],
      );
    } finally {
      await f.cleanup();
    }
  });

  test('fewer workers than worker_processes is DEGRADED; a stopped master UNHEALTHY; a master that turned zombie stays until reaped', async () => {
    const f = await fixture();
    try {
      const first = await f.d.poll();
      const id = first.events.find((e) => e.data.instance.pid === 100)!.data.instance.id;
      await rm(join(f.dir, '102'), { recursive: true });
      let r = await f.d.poll();
      let h = r.events.find((e) => e.topic === 'nginx.instance.health')!;
      assert.equal(h.data.instance.health, 'DEGRADED');
      assert.equal(h.data.instance.healthReason, '1 of 2 worker processes running (worker_processes 2)');

      await f.setStat(100, (x) => (x[0] = 'T'));
      r = await f.d.poll();
      h = r.events.find((e) => e.topic === 'nginx.instance.health')!;
      assert.equal(h.data.instance.health, 'UNHEALTHY');
      assert.match(h.data.instance.healthReason!, /stopped/);

      // The master exits, its parent does not reap it: the kernel empties the command line.
      await f.setStat(100, (x) => (x[0] = 'Z'));
      await writeFile(join(f.dir, '100', 'cmdline'), '');
      r = await f.d.poll();
      assert.ok(
        !r.events.some((e) => e.topic === 'nginx.instance.removed' && e.data.instance.id === id),
        'still known as a zombie',
      );
      const inst = f.d.instances().find((i) => i.id === id)!;
      assert.equal(inst.health, 'UNHEALTHY');
      assert.match(inst.healthReason!, /zombie/);

      await rm(join(f.dir, '100'), { recursive: true });
      r = await f.d.poll();
      const removed = r.events.filter((e) => e.topic === 'nginx.instance.removed').map((e) => e.data.instance.id);
      assert.deepEqual(removed, [id]);
      const fin = r.batches.find((b) => b.source === `nginx-discovery:${id}`)!;
      assert.equal(fin.final, true);
    } finally {
      await f.cleanup();
    }
  });
});

describe('the plugin over fixture trees', () => {
  test('no nginx at start: one warning that says what to do; status carries the hint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proc-empty-'));
    await mkdir(join(dir, '1'));
    await writeFile(join(dir, '1', 'stat'), '1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0\n');
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }),
    );
    const h = await startPlugin(plugin, { interval: '100ms', proc_root: dir }, { logger });
    try {
      const self = h.host.get('nginx-discovery') as NginxDiscoveryPlugin;
      await h.waitFor(() => (self.status().details as { scans: number }).scans >= 3, 'three scans');
      const warns = lines.filter((l) => /no nginx found/.test(l.msg));
      assert.equal(warns.length, 1, 'said once, not at every scan');
      assert.match(
        warns[0].msg,
        new RegExp(`no nginx found in ${dir}: start nginx, or run the agent where it can see the nginx processes`),
      );
      assert.match(warns[0].msg, /shareProcessNamespace: true/);
      assert.match(String((self.status().details as { hint?: string }).hint), /no nginx found/);
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('after an agent config reload every known instance is announced again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proc-fixture-'));
    await cp(td('proc'), dir, { recursive: true, verbatimSymlinks: true });
    const h = await startPlugin(plugin, { interval: '1h', proc_root: dir });
    try {
      const added = () =>
        h.published
          .filter((m) => m.topic === 'nginx.instance.added')
          .map((m) => (m.data as NginxInstanceEvent).instance.pid);
      await h.waitFor(() => added().length === 2, 'the two masters of the fixture');
      h.publish('agent.config.reloaded', { ok: true, changedSections: ['nginx_discovery'] });
      h.publish('agent.config.reloaded', { ok: true, changedSections: ['nginx_status'] });
      await h.waitFor(() => added().length >= 4, 'a second announcement of both');
      await h.bus.drain(2000);
      assert.deepEqual(added().sort(), [100, 100, 400, 400]);
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('discovery of a real nginx (TestNginx)', { skip: needNginx() }, () => {
  test('found with its prefix, config and version; reload -> reloaded; stop -> removed with a final batch', async () => {
    const n = await TestNginx.start({ workers: 2 });
    // TestNginx returns once one worker runs: wait for both, with their worker title (a worker just
    // forked wears its master's title for a moment), so the first scan sees the whole instance.
    const workersUp = async () => {
      const pids = await n.workerPids();
      const titles = await Promise.all(pids.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
      return pids.length === 2 && titles.every((t) => t.includes('worker process'));
    };
    for (const end = Date.now() + 30_000; !(await workersUp()); ) {
      if (Date.now() > end) throw new Error('nginx did not start its 2 workers within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const h = await startPlugin(plugin, { interval: '100ms' });
    try {
      const pid = await n.masterPid();
      const eventsFor = (topic: string) =>
        h.published
          .filter((m) => m.topic === topic && (m.data as NginxInstanceEvent).instance.pid === pid)
          .map((m) => (m.data as NginxInstanceEvent).instance);
      await h.waitFor(() => eventsFor('nginx.instance.added').length > 0, 'nginx.instance.added for the test nginx');
      const inst = eventsFor('nginx.instance.added')[0];
      assert.equal(inst.binary, '/usr/sbin/nginx');
      assert.equal(inst.prefix, n.prefix);
      assert.equal(inst.confPath, n.confPath);
      assert.match(inst.version, /^\d+\.\d+\.\d+$/);
      assert.equal(inst.plus, false);
      assert.ok(inst.modules.includes('http_stub_status_module'));
      assert.deepEqual(inst.workers.map((w) => w.pid).sort(), (await n.workerPids()).sort());
      assert.equal(inst.health, 'HEALTHY');
      const self = h.host.get('nginx-discovery') as NginxDiscoveryPlugin;
      assert.ok(self.instances().some((i) => i.id === inst.id));

      await h.waitFor(
        () =>
          (h.metric('nginx.worker.count')?.points ?? []).some(
            (p) =>
              p.attributes['nginx.instance.id'] === inst.id &&
              p.attributes.state === 'running' &&
              'value' in p &&
              p.value === 2,
          ),
        'two running workers in the store',
      );
      const rss = h
        .metric('nginx.worker.memory.usage')!
        .points.find((p) => p.attributes['nginx.instance.id'] === inst.id)!;
      assert.ok('value' in rss && rss.value > 0);

      // The parsed config asks for 3 workers, 2 run: DEGRADED; back to 2: HEALTHY.
      const changed = (workers: string) =>
        h.publish(
          'nginx.config.changed',
          configChangedFixture({
            instanceId: inst.id,
            confPath: n.confPath,
            prefix: n.prefix,
            version: workers,
            payload: {
              status: 'ok',
              errors: [],
              config: [
                {
                  file: n.confPath,
                  status: 'ok',
                  errors: [],
                  parsed: [{ directive: 'worker_processes', line: 1, args: [workers] }],
                },
              ],
            },
          }),
        );
      changed('3');
      await h.waitFor(
        () => eventsFor('nginx.instance.health').some((i) => i.health === 'DEGRADED'),
        'DEGRADED with 2 of 3 workers',
      );
      assert.equal(
        eventsFor('nginx.instance.health').find((i) => i.health === 'DEGRADED')!.healthReason,
        '2 of 3 worker processes running (worker_processes 3)',
      );
      changed('2');
      await h.waitFor(() => eventsFor('nginx.instance.health').at(-1)!.health === 'HEALTHY', 'HEALTHY again');

      await n.reload();
      await h.waitFor(() => eventsFor('nginx.instance.reloaded').length > 0, 'nginx.instance.reloaded');
      const re = eventsFor('nginx.instance.reloaded')[0];
      assert.equal(re.id, inst.id, 'same instance id after a reload');

      await n.stop();
      await h.waitFor(() => eventsFor('nginx.instance.removed').length > 0, 'nginx.instance.removed');
      await h.waitFor(
        () => !h.store.sources().includes(`nginx-discovery:${inst.id}`),
        'the instance metrics to leave the store',
      );
      assert.equal(eventsFor('nginx.instance.added').length, 1, 'added once');
    } finally {
      await h.close();
      await n.stop();
    }
  });
});

describe('a sidecar without CAP_SYS_PTRACE (no exe link, nginx -V cannot run)', () => {
  async function sidecar(opts: { title: string; existing: string[]; confCandidates?: string[] }) {
    const dir = await mkdtemp(join(tmpdir(), 'proc-sidecar-'));
    await cp(td('proc'), dir, { recursive: true, verbatimSymlinks: true });
    // Only the master at 100 and its workers: the official image's command line, no exe or cwd link.
    for (const pid of ['200', '300', '301', '400', '500', '600']) await rm(join(dir, pid), { recursive: true });
    await rm(join(dir, '100', 'exe'));
    await rm(join(dir, '100', 'cwd'));
    await writeFile(join(dir, '100', 'cmdline'), `${opts.title}\0\0\0`);
    const binaries = new BinaryInfoCache({
      timeoutMs: 1000,
      run: async (file) => {
        throw new Error(`${file} -V: spawn ${file} EACCES`);
      },
    });
    const d = new NginxDiscovery({
      reader: new ProcReader(dir),
      binaries,
      oldGenerationGraceMs: 60_000,
      fileExists: (p) => opts.existing.includes(p),
      ...(opts.confCandidates ? { confCandidates: opts.confCandidates } : {}),
    });
    const r = await d.poll();
    await rm(dir, { recursive: true, force: true });
    const added = r.events.find((e) => e.topic === 'nginx.instance.added')!.data.instance;
    return { instance: added, degraded: d.degradedReason(added.id) };
  }

  test('the conventional /etc/nginx/nginx.conf, readable through the mounted volume, is the config', async () => {
    const { instance, degraded } = await sidecar({
      title: 'nginx: master process nginx -g daemon off;',
      existing: ['/etc/nginx/nginx.conf'],
    });
    assert.equal(instance.confPath, '/etc/nginx/nginx.conf');
    assert.equal(instance.prefix, '/etc/nginx');
    assert.equal(instance.version, '');
    assert.equal(instance.globalDirectives, 'daemon off;');
    assert.match(degraded!, /cannot run \S+ -V: .*EACCES/);
    assert.match(degraded!, /without CAP_SYS_PTRACE/);
    assert.match(degraded!, /using config \/etc\/nginx\/nginx\.conf \(the conventional path, readable here\)/);
  });

  test('-c and -p from the command line win; a configured path comes before the conventional ones', async () => {
    const fromArgs = await sidecar({
      title: 'nginx: master process /usr/sbin/nginx -p /srv/www/ -c conf/site.conf',
      existing: ['/etc/nginx/nginx.conf'],
    });
    assert.equal(fromArgs.instance.confPath, '/srv/www/conf/site.conf');
    assert.equal(fromArgs.instance.prefix, '/srv/www');
    assert.match(fromArgs.degraded!, /using config -c conf\/site\.conf from its command line/);
    const configured = await sidecar({
      title: 'nginx: master process nginx',
      existing: ['/etc/nginx/nginx.conf', '/mnt/nginx/nginx.conf'],
      confCandidates: ['/mnt/nginx/nginx.conf'],
    });
    assert.equal(configured.instance.confPath, '/mnt/nginx/nginx.conf');
    assert.equal(configured.instance.prefix, '/mnt/nginx');
    assert.match(configured.degraded!, /nginx_discovery\.conf_paths/);
  });
});

test('a degraded instance is one warn when it starts and one info when it is healthy again', () => {
  assert.deepEqual(
    healthChange({ pid: 7, health: 'DEGRADED', healthReason: 'older generation still running' }, 'HEALTHY'),
    {
      level: 'warn',
      msg: 'nginx 7 is DEGRADED: older generation still running',
    },
  );
  assert.equal(healthChange({ pid: 7, health: 'UNHEALTHY' }, 'DEGRADED').level, 'warn');
  assert.deepEqual(healthChange({ pid: 7, health: 'HEALTHY' }, 'DEGRADED'), {
    level: 'info',
    msg: 'nginx 7 is HEALTHY again (was DEGRADED)',
  });
});
