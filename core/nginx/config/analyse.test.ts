import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analyseConfig, COMBINED_FORMAT } from './analyse.js';
import { parseNginxConfig, parseNginxText } from './parse.js';

const here = dirname(fileURLToPath(import.meta.url));
const proxy = join(here, 'testdata', 'corpus', 'proxy');
const debian = join(here, 'testdata', 'corpus', 'debian');

describe('analyseConfig on the corpus', () => {
  it('proxy: servers, listen, ssl, locations, upstreams', async () => {
    const conf = join(proxy, 'nginx.conf');
    const a = await analyseConfig(await parseNginxConfig(conf), { prefix: '/opt/ngx', confPath: conf });
    assert.deepEqual(
      a.servers.map((s) => [s.listen, s.serverNames, s.ssl]),
      [
        [['8080', '[::1]:8081', 'unix:/run/nginx-status.sock'], ['status.local'], false],
        [['443'], ['example.test', 'www.example.test'], true],
        [['127.0.0.1:8443'], ['*.wild.test'], true],
      ],
    );
    assert.deepEqual(
      a.servers[1].locations.map((l) => [l.modifier ?? '', l.path]),
      [
        ['', '/'],
        ['~*', '\\.(?:css|js)$'],
        ['', '/lua'],
        ['', '@fallback'],
      ],
    );
    assert.deepEqual(
      a.upstreams.map((u) => [u.name, u.servers.map((s) => s.address)]),
      [
        ['backend', ['10.0.0.1:8080', '10.0.0.2:8080', 'unix:/run/app.sock']],
        ['quoted_name', ['127.0.0.1:9000']],
        ['dns', ['10.0.0.53:53', '10.0.0.54:53']],
      ],
    );
    assert.deepEqual(a.upstreams[0].servers[0].params, ['weight=5', 'max_fails=3', 'fail_timeout=30s']);
  });

  it('proxy: log formats joined, escape= skipped, logs resolved against the prefix, non-tailable marked', async () => {
    const conf = join(proxy, 'nginx.conf');
    const a = await analyseConfig(await parseNginxConfig(conf), { prefix: '/opt/ngx', confPath: conf });
    assert.equal(
      a.logFormats.main,
      '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time',
    );
    assert.equal(a.logFormats.json, '{"ts":"$time_iso8601","status":$status}');
    assert.equal(a.logFormats.combined, COMBINED_FORMAT);
    assert.deepEqual(
      a.accessLogs.map((l) => [l.path, l.formatName, l.tailable, l.reason ?? '']),
      [
        ['/opt/ngx/logs/access.log', 'main', true, ''],
        ['syslog:server=127.0.0.1:514,tag=nginx', 'json', false, 'logs to syslog'],
        ['/dev/stdout', 'combined', false, 'logs to standard output'],
        ['off', '', false, 'logging is off'],
        ['/opt/ngx/logs/wild.log', 'json', true, ''],
      ],
    );
    assert.equal(a.accessLogs[0].format, a.logFormats.main);
    assert.deepEqual(
      a.errorLogs.map((l) => [l.path, l.level, l.line]),
      [['/opt/ngx/logs/error.log', 'warn', 3]],
    );
  });

  it('proxy: stub_status and api URLs from listen addresses and server_name; unix listen skipped', async () => {
    const conf = join(proxy, 'nginx.conf');
    const a = await analyseConfig(await parseNginxConfig(conf), { prefix: '/opt/ngx', confPath: conf });
    assert.deepEqual(
      a.stubStatus.map((s) => s.urls),
      [
        [
          'http://127.0.0.1:8080/basic_status',
          'http://[::1]:8081/basic_status',
          'http://status.local:8080/basic_status',
          'http://status.local:8081/basic_status',
        ],
      ],
    );
    assert.equal(a.plusApi.length, 1);
    assert.equal(a.plusApi[0].write, true);
    assert.equal(a.plusApi[0].urls[0], 'http://127.0.0.1:8080/api');
  });

  it('proxy: certificates read with X509Certificate; variables, garbage and missing files give errors', async () => {
    const conf = join(proxy, 'nginx.conf');
    const a = await analyseConfig(await parseNginxConfig(conf), { prefix: '/opt/ngx', confPath: conf });
    const byPath = new Map(a.certificates.map((c) => [c.path, c]));
    const ex = byPath.get(join(proxy, 'certs/example.pem'));
    const x = new X509Certificate(readFileSync(join(proxy, 'certs/example.pem')));
    assert.equal(ex?.subject, x.subject);
    assert.match(ex?.subject ?? '', /CN=example\.test/);
    assert.equal(ex?.issuer, x.issuer);
    assert.equal(ex?.notAfter, Date.parse(x.validTo));
    assert.equal(ex?.error, undefined);
    assert.match(byPath.get('/etc/ssl/$ssl_server_name.pem')?.error ?? '', /contains variables/);
    assert.match(byPath.get(join(proxy, 'certs/broken.pem'))?.error ?? '', /nginx\.conf:\d+: cannot read certificate/);
    assert.match(byPath.get(join(proxy, 'certs/missing.pem'))?.error ?? '', /ENOENT|no such file/i);
    assert.ok(byPath.get(join(proxy, 'certs/short.pem'))?.notAfter);
  });

  it('debian: stub_status with default_server listens, access log from http, no defaults added', async () => {
    const conf = join(debian, 'nginx.conf');
    const a = await analyseConfig(await parseNginxConfig(conf), { prefix: '/usr/share/nginx', confPath: conf });
    assert.deepEqual(a.stubStatus[0].urls, ['http://127.0.0.1/nginx_status', 'http://[::1]/nginx_status']);
    assert.deepEqual(
      a.accessLogs.map((l) => l.path),
      ['/var/log/nginx/access.log'],
    );
    assert.deepEqual(
      a.errorLogs.map((l) => l.path),
      ['/var/log/nginx/error.log'],
    );
    assert.equal(a.servers[0].locations.length, 4);
  });
});

describe('analyseConfig defaults and inheritance', () => {
  const analyse = (text: string) =>
    analyseConfig(parseNginxText(text, '/p/conf/nginx.conf'), { prefix: '/p', confPath: '/p/conf/nginx.conf' });

  it('no access_log and no error_log: nginx defaults under the prefix', async () => {
    const a = await analyse('http { server { listen 80; } }');
    assert.deepEqual(
      a.accessLogs.map((l) => [l.path, l.formatName, l.format]),
      [['/p/logs/access.log', 'combined', COMBINED_FORMAT]],
    );
    assert.deepEqual(
      a.errorLogs.map((l) => [l.path, l.level]),
      [['/p/logs/error.log', 'error']],
    );
  });

  it('http-level access_log covers servers without their own: no default', async () => {
    const a = await analyse('http { access_log logs/a.log; server { listen 80; } server { access_log /x/b.log; } }');
    assert.deepEqual(
      a.accessLogs.map((l) => l.path),
      ['/p/logs/a.log', '/x/b.log'],
    );
  });

  it('a server without access_log and no http-level one gets the default', async () => {
    const a = await analyse('http { server { access_log /x/b.log; } server { listen 81; } }');
    assert.deepEqual(
      a.accessLogs.map((l) => l.path),
      ['/x/b.log', '/p/logs/access.log'],
    );
  });

  it('stderr and /dev/stderr error logs are not tailable; unknown format is named', async () => {
    const a = await analyse('error_log stderr info; error_log /dev/stderr; http { access_log logs/x.log nosuch; }');
    assert.deepEqual(
      a.errorLogs.map((l) => [l.path, l.tailable, l.level]),
      [
        ['stderr', false, 'info'],
        ['/dev/stderr', false, 'error'],
      ],
    );
    assert.equal(a.accessLogs[0].tailable, false);
    assert.match(a.accessLogs[0].reason ?? '', /log_format "nosuch" is not defined/);
  });

  it('ssl listen and ssl on give https URLs; ports 80/443 are dropped from URLs', async () => {
    const a = await analyse(
      'http { server { listen 443 ssl default_server; listen *:8443 ssl; server_name a.test; location = /s { stub_status; } } }',
    );
    assert.deepEqual(a.stubStatus[0].urls, [
      'https://127.0.0.1/s',
      'https://127.0.0.1:8443/s',
      'https://a.test/s',
      'https://a.test:8443/s',
    ]);
  });
});
