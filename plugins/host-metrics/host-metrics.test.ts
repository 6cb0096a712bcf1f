import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Metric, MetricBatch, NumberPoint } from '../../core/metrics/model.js';
import { startPlugin } from '../../core/testing/plugin-harness.js';
import { parseCpuMax, parseMemoryLimit, parseProcCgroup, readCgroup } from './cgroup.js';
import { HostCollector, type CollectorSettings } from './collector.js';
import { DEFAULT_EXCLUDE_FS_TYPES, DEFAULT_EXCLUDE_MOUNTPOINTS, plugin } from './index.js';
import {
  cpuUtilization,
  memoryState,
  parseDiskstats,
  parseLoadavg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseNetTcp,
  parseProcStat,
  parseSockstat,
} from './parsers.js';
import { countSpawns } from './spawn-counter.js';

const here = import.meta.dirname;
const td = (...p: string[]): string => join(here, 'testdata', ...p);

function settings(dir: string, extra: Partial<CollectorSettings> = {}): CollectorSettings {
  return {
    procRoot: join(dir, 'proc'),
    sysRoot: join(dir, 'sys'),
    cgroupRoot: join(dir, 'cgroup'),
    excludeFsTypes: DEFAULT_EXCLUDE_FS_TYPES,
    excludeMountpoints: DEFAULT_EXCLUDE_MOUNTPOINTS,
    excludeDisks: [/^(z?ram|loop|fd)\d+$/],
    excludeNetDevices: [],
    ...extra,
  };
}
const find = (ms: Metric[], name: string): Metric | undefined => ms.find((m) => m.name === name);
const value = (ms: Metric[], name: string, attrs: Record<string, string> = {}): number | undefined => {
  const m = find(ms, name);
  if (!m || m.type === 'histogram') return undefined;
  return m.points.find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))?.value;
};

const pts = (ms: Metric[], name: string): NumberPoint[] => {
  const m = find(ms, name);
  return m && m.type !== 'histogram' ? [...m.points] : [];
};

describe('parsers', () => {
  test('parseProcStat sums the cpu line and counts cpuN lines; guest is not added twice', () => {
    const s = parseProcStat(
      'cpu  10 1 5 80 2 1 1 0 7 0\ncpu0 5 0 2 40 1 0 1 0 3 0\ncpu1 5 1 3 40 1 1 0 0 4 0\nintr 1 2\n',
    );
    assert.deepEqual(s, {
      total: { user: 10, nice: 1, system: 5, idle: 80, iowait: 2, interrupt: 1, softirq: 1, steal: 0 },
      logicalCount: 2,
    });
    assert.equal(parseProcStat('intr 1\n'), null);
  });
  test('cpuUtilization is per-state delta over total delta, and null for no or negative time', () => {
    const a = { user: 10, nice: 0, system: 10, idle: 80, iowait: 0, interrupt: 0, softirq: 0, steal: 0 };
    const b = { ...a, user: 40, system: 20, idle: 140 };
    const u = cpuUtilization(a, b)!;
    assert.equal(u.user, 0.3);
    assert.equal(u.system, 0.1);
    assert.equal(u.idle, 0.6);
    assert.equal(cpuUtilization(a, a), null);
    assert.equal(cpuUtilization(b, a), null);
  });
  test('parseMeminfo multiplies kB; memoryState partitions total like free(1)', () => {
    const m = parseMeminfo(
      'MemTotal:  1000 kB\nMemFree:  100 kB\nMemAvailable:  600 kB\nBuffers:  50 kB\nCached:  300 kB\nSReclaimable: 50 kB\nHugePages_Total: 0\n',
    );
    assert.equal(m.get('MemTotal'), 1024000);
    assert.equal(m.get('HugePages_Total'), 0);
    const s = memoryState(m)!;
    assert.equal(s.used + s.free + s.buffered + s.cached, s.total);
    assert.equal(s.cached, 350 * 1024);
    assert.equal(s.available, 600 * 1024);
    assert.equal(memoryState(new Map()), null);
  });
  test('parseLoadavg', () => {
    assert.deepEqual(parseLoadavg('0.21 0.37 0.39 1/719 19737\n'), { m1: 0.21, m5: 0.37, m15: 0.39 });
    assert.equal(parseLoadavg('garbage'), null);
  });
  test('parseMounts undoes octal escapes', () => {
    assert.deepEqual(parseMounts('/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n'), [
      { device: '/dev/sda1', mountpoint: '/mnt/my disk', type: 'ext4', options: 'rw' },
    ]);
  });
  test('parseDiskstats: 512-byte sectors, ms to s', () => {
    const [d] = parseDiskstats(
      ' 254       0 vda 202712 36313 8411242 113605 29979 61396 3458184 10729 0 19604 126957 44192 173 1586128 2558 1753 63\n',
    );
    assert.deepEqual(d, {
      device: 'vda',
      readOps: 202712,
      readBytes: 8411242 * 512,
      readTime: 113.605,
      writeOps: 29979,
      writeBytes: 3458184 * 512,
      writeTime: 10.729,
    });
  });
  test('parseNetDev skips the headers', () => {
    const t =
      'Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 5000 40 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n';
    assert.deepEqual(parseNetDev(t)[1], {
      device: 'eth0',
      rxBytes: 5000,
      rxPackets: 40,
      rxErrors: 1,
      rxDropped: 2,
      txBytes: 3000,
      txPackets: 30,
      txErrors: 3,
      txDropped: 4,
    });
  });
  test('parseNetTcp counts states from the st column and accumulates', async () => {
    const m = parseNetTcp(await readFile(td('host-swap', 'proc', 'net', 'tcp'), 'utf8'));
    assert.deepEqual(Object.fromEntries(m), { LISTEN: 2, ESTABLISHED: 1, TIME_WAIT: 1 });
    parseNetTcp(await readFile(td('host-swap', 'proc', 'net', 'tcp6'), 'utf8'), m);
    assert.equal(m.get('LISTEN'), 3);
  });
  test('parseSockstat', () => {
    const m = parseSockstat('sockets: used 19\nTCP: inuse 2 orphan 0 tw 5 alloc 2 mem 51\nFRAG: inuse 0 memory 0\n');
    assert.equal(m.get('TCP.inuse'), 2);
    assert.equal(m.get('TCP.tw'), 5);
    assert.equal(m.get('sockets.used'), 19);
  });
  test('cgroup parsers', () => {
    assert.equal(parseCpuMax('max 100000\n'), undefined);
    assert.equal(parseCpuMax('150000 100000\n'), 1.5);
    assert.equal(parseMemoryLimit('max\n'), undefined);
    assert.equal(parseMemoryLimit('9223372036854771712\n'), undefined);
    assert.equal(parseMemoryLimit('268435456\n'), 268435456);
    const c = parseProcCgroup('11:cpu,cpuacct:/docker/x\n0::/a\n');
    assert.equal(c.v2, '/a');
    assert.equal(c.v1.get('cpuacct'), '/docker/x');
  });
});

describe('collector on recorded trees', () => {
  test('host with swap: paging, memory states, load, and CPU utilization only from the second cycle', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hm-'));
    try {
      await cp(td('host-swap'), dir, { recursive: true });
      const c = new HostCollector(settings(dir));
      const first = await c.collect();
      assert.equal(find(first, 'system.cpu.utilization'), undefined, 'no rate from one sample');
      assert.equal(value(first, 'system.cpu.logical.count'), 2);
      assert.equal(value(first, 'system.cpu.load_average.5m'), 0.37);
      assert.equal(value(first, 'system.paging.usage', { state: 'used' }), (2097148 - 1048574) * 1024);
      assert.equal(value(first, 'system.paging.usage', { state: 'free' }), 1048574 * 1024);
      assert.equal(value(first, 'system.memory.limit'), 8000000 * 1024);
      assert.equal(
        value(first, 'system.memory.usage', { state: 'used' }),
        (8000000 - 1000000 - 200000 - 3300000) * 1024,
      );
      assert.equal(value(first, 'system.memory.utilization', { state: 'free' }), 0.125);
      // sockstat says TCP6 has a socket and TIME_WAIT has one: both files are read
      assert.equal(value(first, 'system.network.connections', { protocol: 'tcp', state: 'LISTEN' }), 3);
      await cp(join(dir, 'proc', 'stat.next'), join(dir, 'proc', 'stat'));
      await writeFile(join(dir, 'proc', 'net', 'sockstat'), 'TCP: inuse 3 orphan 0 tw 0 alloc 4 mem 1\n');
      await writeFile(join(dir, 'proc', 'net', 'sockstat6'), 'TCP6: inuse 0\n');
      const second = await c.collect();
      // deltas: user 100 nice 10 system 50 idle 700 iowait 20 irq 5 softirq 5 steal 10 = 900
      assert.equal(value(second, 'system.cpu.utilization', { state: 'idle' }), 700 / 900);
      assert.equal(value(second, 'system.cpu.utilization', { state: 'steal' }), 10 / 900);
      assert.equal(
        value(second, 'system.network.connections', { protocol: 'tcp', state: 'LISTEN' }),
        2,
        'tcp6 skipped: no IPv6 TCP socket, no TIME_WAIT',
      );
      const sum = pts(second, 'system.cpu.utilization').reduce((a, p) => a + p.value, 0);
      assert.ok(Math.abs(sum - 1) < 1e-9);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('host without swap: no paging metric, reported once; disks, filesystems and sockets filtered', async () => {
    const missing: string[] = [];
    const c = new HostCollector(settings(td('host-noswap'), { onMissing: (w) => missing.push(w) }));
    const ms = await c.collect();
    await c.collect();
    assert.equal(find(ms, 'system.paging.usage'), undefined);
    assert.equal(missing.filter((m) => m === 'swap').length, 1, 'one debug line, not one per cycle');
    // loop0/zram0 by the exclude regex, vda1 because it is a partition (not in sys/block)
    const disks = new Set(pts(ms, 'system.disk.io').map((p) => p.attributes.device));
    assert.deepEqual([...disks], ['vda']);
    assert.equal(value(ms, 'system.disk.io', { device: 'vda', direction: 'read' }), 8411242 * 512);
    assert.equal(find(ms, 'system.disk.io')!.type, 'counter');
    const mounts = new Set(pts(ms, 'system.filesystem.usage').map((p) => p.attributes.mountpoint));
    assert.ok(mounts.has('/'), 'the root file system is kept');
    for (const m of ['/proc', '/sys', '/dev', '/dev/shm', '/sys/fs/cgroup'])
      assert.ok(!mounts.has(m), `${m} is excluded`);
    assert.ok(missing.includes('statfs /mnt/my disk'), 'an unreachable mount point is left out and named');
    const root = (s: string): number => value(ms, 'system.filesystem.usage', { mountpoint: '/', state: s })!;
    assert.ok(root('used') > 0 && root('free') > 0 && root('reserved') >= 0);
    assert.equal(value(ms, 'system.network.connections', { protocol: 'tcp', state: 'LISTEN' }), 3);
    assert.equal(value(ms, 'system.network.connections', { protocol: 'tcp', state: 'TIME_WAIT' }), 1);
    assert.equal(value(ms, 'system.network.connections', { protocol: 'udp', state: 'CLOSE' }), 1);
    assert.equal(value(ms, 'system.network.connections', { protocol: 'udp', state: 'ESTABLISHED' }), 1);
    assert.ok(value(ms, 'system.network.io', { device: 'lo', direction: 'receive' })! >= 0, 'lo kept by default');
  });

  test('connections_interval: each socket table is read once per period, IPv4 and IPv6 on different cycles', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'host-sockets-'));
    try {
      await cp(td('host-noswap'), dir, { recursive: true });
      const c = new HostCollector(settings(dir, { connectionsIntervalMs: 1 }));
      const listen = async () =>
        value(await c.collect(), 'system.network.connections', { protocol: 'tcp', state: 'LISTEN' });
      assert.equal(await listen(), 3, 'the first cycle reads both families');
      // One more listening socket in each family.
      const v4 =
        '   9: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n';
      const v6 =
        '   9: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 100 0 0 10 0\n';
      await writeFile(join(dir, 'proc/net/tcp'), (await readFile(join(dir, 'proc/net/tcp'), 'utf8')) + v4);
      await writeFile(join(dir, 'proc/net/tcp6'), (await readFile(join(dir, 'proc/net/tcp6'), 'utf8')) + v6);
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(await listen(), 4, 'both due: IPv4 read, IPv6 counts reused');
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(await listen(), 5, 'then IPv6');
      const slow = new HostCollector(settings(dir, { connectionsIntervalMs: 3_600_000 }));
      const first = value(await slow.collect(), 'system.network.connections', { protocol: 'tcp', state: 'LISTEN' });
      await writeFile(join(dir, 'proc/net/tcp'), (await readFile(join(dir, 'proc/net/tcp'), 'utf8')) + v4);
      const again = value(await slow.collect(), 'system.network.connections', { protocol: 'tcp', state: 'LISTEN' });
      assert.equal(again, first, 'within the period the last counts are repeated');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('cgroup v2 container with cpu.max and memory.max', async () => {
    const ms = await new HostCollector(settings(td('container-v2'))).collect();
    assert.equal(value(ms, 'container.cpu.time'), 12.345678);
    assert.equal(value(ms, 'container.cpu.limit'), 1.5);
    assert.equal(value(ms, 'container.cpu.throttling_data.periods'), 500);
    assert.equal(value(ms, 'container.cpu.throttling_data.throttled_periods'), 42);
    assert.equal(value(ms, 'container.cpu.throttling_data.throttled_time'), 3.5);
    assert.equal(value(ms, 'container.memory.usage'), 104857600);
    assert.equal(value(ms, 'container.memory.limit'), 268435456);
    assert.equal(value(ms, 'container.memory.oom_events'), 2);
    // overlay root kept, proc/tmpfs/cgroup2 left out
    assert.deepEqual(
      [...new Set(pts(ms, 'system.filesystem.usage').map((p) => `${p.attributes.type} ${p.attributes.mountpoint}`))],
      ['overlay /'],
    );
  });

  test('cgroup v1 container: per-controller paths, unlimited parent ignored; missing diskstats leaves disks out', async () => {
    const missing: string[] = [];
    const ms = await new HostCollector(settings(td('container-v1'), { onMissing: (w) => missing.push(w) })).collect();
    assert.equal(value(ms, 'container.cpu.time'), 98.7654321);
    assert.equal(value(ms, 'container.cpu.limit'), 0.5);
    assert.equal(value(ms, 'container.cpu.throttling_data.throttled_time'), 2.5);
    assert.equal(value(ms, 'container.memory.limit'), 134217728);
    assert.equal(value(ms, 'container.memory.usage'), 52428800);
    assert.equal(value(ms, 'container.memory.oom_events'), 1);
    assert.equal(find(ms, 'system.disk.io'), undefined);
    assert.ok(missing.includes('/proc/diskstats'));
    assert.ok(find(ms, 'system.memory.usage'), 'the rest is still collected');
  });

  test('readCgroup returns null without cgroup files', async () => {
    assert.equal(readCgroup(td('host-swap', 'nowhere'), '0::/\n'), null);
  });
});

describe('live machine', () => {
  test('values are sane', async () => {
    const c = new HostCollector({
      ...settings('/'),
      procRoot: '/proc',
      sysRoot: '/sys',
      cgroupRoot: '/sys/fs/cgroup',
      self: true,
    });
    await c.collect();
    await new Promise((r) => setTimeout(r, 2500)); // the event-loop sampler's first sample comes ~2 s after start
    const ms = await c.collect();
    c.close();
    assert.equal(value(ms, 'system.cpu.logical.count'), cpus().length);
    assert.ok(value(ms, 'system.cpu.logical.count')! >= availableParallelism());
    const total = Number(/MemTotal:\s+(\d+)/.exec(await readFile('/proc/meminfo', 'utf8'))![1]) * 1024;
    assert.equal(value(ms, 'system.memory.limit'), total);
    const u = { points: pts(ms, 'system.cpu.utilization') };
    assert.ok(u.points.length > 0, 'second cycle has CPU utilization');
    assert.ok(Math.abs(u.points.reduce((a, p) => a + p.value, 0) - 1) < 1e-9);
    assert.ok(u.points.every((p) => p.value >= 0 && p.value <= 1));
    assert.ok(value(ms, 'system.filesystem.usage', { mountpoint: '/', state: 'used' })! > 0);
    assert.ok(value(ms, 'process.memory.usage')! > 10e6);
    assert.ok(value(ms, 'process.runtime.nodejs.memory.heap.used')! > 0);
    assert.ok(value(ms, 'process.cpu.time', { state: 'user' })! > 0);
    assert.ok(value(ms, 'process.open_file_descriptors')! >= 3);
    const p99 = value(ms, 'nodejs.eventloop.delay.p99');
    assert.ok(
      p99 !== undefined && p99 >= 0 && p99 < 0.5,
      `event-loop delay p99 ${p99} s (the resolution is taken off)`,
    );
    assert.ok(value(ms, 'system.network.io', { device: 'lo', direction: 'receive' })! >= 0);
  });
});

describe('through the plugin host', () => {
  test('the spawn counter sees sync and async child processes (so the next test can fail)', async () => {
    const s = countSpawns();
    try {
      execFileSync('true');
      await new Promise((r) => spawn('true').on('exit', r));
      assert.equal(s.files.length, 2);
    } finally {
      s.restore();
    }
  });

  test('a bad exclude regex stops the plugin at start with the key and index named', async () => {
    await assert.rejects(
      startPlugin(plugin, { exclude_disks: ['ok', '(unclosed'] }),
      /host_metrics\.exclude_disks\[1\]: "\(unclosed" is not a valid regular expression/,
    );
  });

  test('batches arrive on the bus, the first right away; no child process after the first cycle', async () => {
    const s = countSpawns();
    const h = await startPlugin(plugin, { interval: '1s' });
    try {
      const batches = (): MetricBatch[] =>
        h.published.filter((e) => e.topic === 'metrics').map((e) => e.data as MetricBatch);
      await h.waitFor(() => batches().length >= 1, 'first batch', 10_000);
      const afterFirst = s.files.length;
      await h.waitFor(() => batches().length >= 4, 'three more batches', 10_000);
      assert.deepEqual(s.files.slice(afterFirst), [], 'no child process after the first cycle');
      const b = batches()[3]!;
      assert.equal(b.source, 'host-metrics');
      const info = b.metrics.find((m) => m.name === 'system.info');
      assert.ok(
        info && info.type === 'gauge' && info.points[0]!.attributes['host.arch'],
        'inventory (os-release, cpuinfo) as system.info',
      );
      assert.ok(b.metrics.some((m) => m.name === 'system.cpu.utilization'));
      assert.ok(!batches()[0]!.metrics.some((m) => m.name === 'system.cpu.utilization'), 'no rate in the first batch');
      assert.ok(h.metric('system.memory.usage'), 'metrics reach the store');
    } finally {
      await h.close();
      s.restore();
    }
  });
});
