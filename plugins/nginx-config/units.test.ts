import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CertificateInfo, ConfigPayload } from '../../core/nginx/types.js';
import { certificateMetrics, expiringCertificates } from './certs.js';
import { diffFiles } from './diff.js';
import { severeLines } from './error-log.js';
import { OwnWrites, sha256 } from './own-writes.js';
import { newWorkers, parseStartTicks, readWorkers } from './proc.js';
import { concernsConfig, globToRegExp, includePatterns, isTempFile, planWatch } from './watch-targets.js';

const here = import.meta.dirname;

describe('diffFiles', () => {
  it('lists added, removed and changed files by path and hash, sorted', () => {
    const a = [
      { path: '/e/a', sha256: '1', size: 1 },
      { path: '/e/b', sha256: '2', size: 1 },
      { path: '/e/c', sha256: '3', size: 1 },
    ];
    const b = [
      { path: '/e/a', sha256: '1', size: 1 },
      { path: '/e/c', sha256: '9', size: 1 },
      { path: '/e/d', sha256: '4', size: 1 },
    ];
    assert.deepEqual(diffFiles(a, b), { added: ['/e/d'], removed: ['/e/b'], changed: ['/e/c'] });
    assert.deepEqual(diffFiles(undefined, a), { added: ['/e/a', '/e/b', '/e/c'], removed: [], changed: [] });
  });
});

describe('OwnWrites', () => {
  it('recognises the latest content the agent wrote until it expires', () => {
    let now = 1000;
    const w = new OwnWrites(500, () => now);
    w.record('/e/a', 'one');
    assert.equal(w.isOwn('/e/a', sha256('one')), true);
    assert.equal(w.isOwn('/e/a', sha256('other')), false);
    assert.equal(w.isOwn('/e/b', sha256('one')), false);
    w.record('/e/a', 'two');
    assert.equal(w.isOwn('/e/a', sha256('one')), false, 'only the latest write is ours');
    w.record('/e/a', null);
    assert.equal(w.isOwn('/e/a', null), true, 'a deletion by the agent');
    now += 600;
    assert.equal(w.isOwn('/e/a', null), false, 'expired');
    assert.equal(w.size, 0);
  });
});

describe('watch targets', () => {
  it('recognises editor temp files', () => {
    for (const n of [
      '/e/.nginx.conf.swp',
      '/e/nginx.conf.swp',
      '/e/nginx.conf~',
      '/e/.#nginx.conf',
      '/e/#nginx.conf#',
      '/e/4913',
      '/e/x.conf.tmp',
      '/e/.x.conf.agent-abc.tmp',
    ])
      assert.equal(isTempFile(n), true, n);
    for (const n of ['/e/nginx.conf', '/e/conf.d/a.conf', '/e/mime.types', '/e/49130'])
      assert.equal(isTempFile(n), false, n);
  });

  it('turns glob(3) patterns into path RegExps (no match across / and no hidden files for *)', () => {
    const re = globToRegExp('/etc/nginx/conf.d/*.conf');
    assert.equal(re.test('/etc/nginx/conf.d/a.conf'), true);
    assert.equal(re.test('/etc/nginx/conf.d/sub/a.conf'), false);
    assert.equal(re.test('/etc/nginx/conf.d/.hidden.conf'), false);
    assert.equal(re.test('/etc/nginx/conf.d/a.conf.bak'), false);
    assert.equal(globToRegExp('/e/site?-[0-9].conf').test('/e/site1-5.conf'), true);
    assert.equal(globToRegExp('/e/[!a]*.conf').test('/e/a.conf'), false);
    assert.equal(globToRegExp('/e/[!a]*.conf').test('/e/b.conf'), true);
    assert.equal(globToRegExp('/e/*/x.conf').test('/e/d/x.conf'), true);
    assert.equal(globToRegExp('/e/a+b(c).conf').test('/e/a+b(c).conf'), true);
  });

  it('collects include patterns from every file, relative to the config directory', () => {
    const payload: ConfigPayload = {
      status: 'ok',
      errors: [],
      config: [
        {
          file: '/etc/nginx/nginx.conf',
          status: 'ok',
          errors: [],
          parsed: [
            { directive: 'include', line: 1, args: ['modules-enabled/*.conf'] },
            {
              directive: 'http',
              line: 2,
              args: [],
              block: [
                { directive: 'include', line: 3, args: ['/etc/nginx/mime.types'] },
                { directive: 'include', line: 4, args: ['conf.d/*.conf'] },
              ],
            },
          ],
        },
        {
          file: '/etc/nginx/conf.d/a.conf',
          status: 'ok',
          errors: [],
          parsed: [{ directive: 'include', line: 1, args: ['snippets/$var.conf'] }],
        },
      ],
    };
    assert.deepEqual(includePatterns(payload, '/etc/nginx'), [
      '/etc/nginx/conf.d/*.conf',
      '/etc/nginx/mime.types',
      '/etc/nginx/modules-enabled/*.conf',
    ]);
  });

  it('plans directories and depth, from the nearest existing ancestor of a missing glob base', async () => {
    const exists = async (d: string) => ['/', '/etc', '/etc/nginx', '/etc/nginx/conf.d', '/srv'].includes(d);
    const plan = await planWatch({
      files: ['/etc/nginx/nginx.conf', '/etc/nginx/conf.d/a.conf'],
      patterns: ['/etc/nginx/conf.d/*.conf', '/etc/nginx/sites/*/x.conf', '/srv/missing/*.conf'],
      exclude: ['/etc/nginx/conf.d/access.log'],
      exists,
    });
    // conf.d is covered by /etc/nginx at depth >= 1; sites/* needs depth 2 below /etc/nginx.
    assert.deepEqual(plan.dirs, ['/etc/nginx', '/srv']);
    assert.equal(plan.depth, 2);
    assert.equal(concernsConfig(plan, '/etc/nginx/conf.d/b.conf'), true);
    assert.equal(concernsConfig(plan, '/etc/nginx/conf.d/b.conf.swp'), false);
    assert.equal(concernsConfig(plan, '/etc/nginx/conf.d/readme.txt'), false);
    assert.equal(concernsConfig(plan, '/etc/nginx/conf.d/access.log'), false);
    assert.equal(concernsConfig(plan, '/etc/nginx/nginx.conf'), true);
    assert.equal(concernsConfig(plan, '/etc/nginx/sites/a/x.conf'), true);
    assert.equal(concernsConfig(plan, '/srv/missing/new.conf'), true);
  });
});

describe('proc', () => {
  it('reads the start time from a stat line whose comm has spaces and parens', () => {
    const stat =
      '1234 (nginx: worker (x)) S 1200 1200 1200 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345678 300 18446744073709551615';
    assert.equal(parseStartTicks(stat), 987654);
    assert.equal(parseStartTicks('garbage'), null);
  });

  it('reads the children of a master from a /proc fixture', async () => {
    const ws = await readWorkers(join(here, 'testdata', 'proc'), 100);
    assert.deepEqual(ws, [
      { pid: 101, startTicks: 5000 },
      { pid: 102, startTicks: 5001 },
    ]);
    assert.deepEqual(await readWorkers(join(here, 'testdata', 'proc'), 999), []);
  });

  it('finds new workers, including a reused pid with a new start time', () => {
    assert.deepEqual(
      newWorkers(
        [
          { pid: 1, startTicks: 10 },
          { pid: 2, startTicks: 11 },
        ],
        [
          { pid: 2, startTicks: 11 },
          { pid: 1, startTicks: 20 },
          { pid: 3, startTicks: 21 },
        ],
      ),
      [
        { pid: 1, startTicks: 20 },
        { pid: 3, startTicks: 21 },
      ],
    );
  });
});

describe('error log', () => {
  it('keeps emerg, alert and crit lines only', () => {
    const text = [
      '2026/11/24 07:00:00 [notice] 1#1: signal process started',
      '2026/11/24 07:00:01 [emerg] 1#1: bind() to 127.0.0.1:8080 failed (98: Address already in use)',
      '2026/11/24 07:00:01 [warn] 1#1: x',
      '2026/11/24 07:00:01 [alert] 1#1: y',
      '2026/11/24 07:00:01 [crit] 1#1: z',
      '2026/11/24 07:00:01 [error] 1#1: w',
    ].join('\n');
    assert.deepEqual(
      severeLines(text).map((l) => l.match(/\[(\w+)\]/)![1]),
      ['emerg', 'alert', 'crit'],
    );
  });
});

describe('certificates', () => {
  const day = 86_400_000;
  const now = Date.UTC(2026, 0, 1);
  const certs: CertificateInfo[] = [
    { path: '/c/soon.pem', file: '/e/n.conf', line: 3, subject: 'CN=soon', notAfter: now + 5 * day },
    { path: '/c/later.pem', file: '/e/n.conf', line: 4, subject: 'CN=later', notAfter: now + 90 * day },
    { path: '/c/gone.pem', file: '/e/n.conf', line: 5, notAfter: now - day },
    { path: '/c/soon.pem', file: '/e/other.conf', line: 9, subject: 'CN=soon', notAfter: now + 5 * day },
    { path: '/c/broken.pem', file: '/e/n.conf', line: 6, error: 'not a certificate' },
  ];

  it('is one gauge point per certificate file, in seconds until notAfter', () => {
    const [m] = certificateMetrics(certs, now);
    assert.equal(m.name, 'nginx.ssl.certificate.expiry');
    assert.equal(m.unit, 's');
    assert.deepEqual(
      m.points.map((p) => [p.attributes.path, p.attributes.subject, (p as { value: number }).value]),
      [
        ['/c/soon.pem', 'CN=soon', 5 * 86_400],
        ['/c/later.pem', 'CN=later', 90 * 86_400],
        ['/c/gone.pem', '', -86_400],
      ],
    );
  });

  it('announces certificates inside the window once, and again when renewed into it', () => {
    const announced = new Set<string>();
    const first = expiringCertificates('i1', certs, now, 30 * day, announced);
    assert.deepEqual(
      first.map((e) => [e.path, e.secondsLeft]),
      [
        ['/c/soon.pem', 5 * 86_400],
        ['/c/gone.pem', -86_400],
      ],
    );
    assert.deepEqual(expiringCertificates('i1', certs, now + 1000, 30 * day, announced), []);
    const renewed = [{ ...certs[0], notAfter: now + 20 * day }];
    assert.equal(expiringCertificates('i1', renewed, now, 30 * day, announced).length, 1);
  });
});
