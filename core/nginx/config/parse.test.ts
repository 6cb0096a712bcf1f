import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ConfigDirective, ConfigPayload } from '../types.js';
import { parseNginxConfig, parseNginxText } from './parse.js';

const here = dirname(fileURLToPath(import.meta.url));
const corpus = join(here, 'testdata', 'corpus');

/** Makes file paths relative to the corpus so goldens do not depend on the checkout path. */
function portable(p: ConfigPayload, base: string): ConfigPayload {
  const rel = (f: string) => (f.startsWith(base) ? relative(base, f) : f);
  return {
    ...p,
    errors: p.errors.map((e) => ({ ...e, file: rel(e.file) })),
    config: p.config.map((c) => ({ ...c, file: rel(c.file) })),
  };
}

function find(list: ConfigDirective[], name: string): ConfigDirective[] {
  const out: ConfigDirective[] = [];
  for (const d of list) {
    if (d.directive === name) out.push(d);
    if (d.block) out.push(...find(d.block, name));
  }
  return out;
}

describe('parseNginxConfig golden corpus', () => {
  for (const name of ['debian', 'proxy']) {
    for (const comments of [false, true]) {
      it(`${name}${comments ? ' with comments' : ''} matches its golden JSON`, async () => {
        const base = join(corpus, name);
        const got = portable(await parseNginxConfig(join(base, 'nginx.conf'), { comments }), base);
        const golden = join(corpus, `${name}${comments ? '.comments' : ''}.golden.json`);
        const text = `${JSON.stringify(got, null, 2)}\n`;
        if (process.env.UPDATE_GOLDEN === '1' || !existsSync(golden)) writeFileSync(golden, text);
        assert.deepEqual(got, JSON.parse(readFileSync(golden, 'utf8')));
      });
    }
  }

  it('debian: includes resolve relative to the conf dir, each file once, glob sorted', async () => {
    const base = join(corpus, 'debian');
    const p = await parseNginxConfig(join(base, 'nginx.conf'));
    assert.equal(p.status, 'ok', JSON.stringify(p.errors));
    assert.deepEqual(
      p.config.map((c) => relative(base, c.file)),
      ['nginx.conf', 'mime.types', 'conf.d/gzip.conf', 'sites-enabled/default', 'snippets/fastcgi-php.conf'],
    );
    const incs = find(p.config[0].parsed, 'include');
    assert.deepEqual(
      incs.map((i) => i.includes),
      [[], [1], [2], [3]],
    );
    const types = p.config[1].parsed[0];
    assert.equal(types.directive, 'types');
    assert.deepEqual(types.block?.[4], {
      directive: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      line: 7,
      args: ['docx'],
    });
  });

  it('proxy: accepts include inside if, ssl_ocsp leaf, lua bodies as one argument, quoting', async () => {
    const base = join(corpus, 'proxy');
    const p = await parseNginxConfig(join(base, 'nginx.conf'));
    assert.equal(p.status, 'ok', JSON.stringify(p.errors));
    const all = p.config[0].parsed;
    const ifs = find(all, 'if');
    assert.deepEqual(ifs[0].args, ['$request_method', '=', 'POST']);
    assert.equal(ifs[0].block?.[0].directive, 'include');
    assert.equal(p.config[ifs[0].block?.[0].includes?.[0] ?? -1].file, join(base, 'snippets/post-limits.conf'));
    assert.deepEqual(ifs[1].args, ['$http_user_agent', '~*', '(curl|wget)']);
    assert.deepEqual(find(all, 'ssl_ocsp')[0].args, ['leaf']);
    const lua = find(all, 'content_by_lua_block')[0];
    assert.equal(lua.args.length, 1);
    assert.match(
      lua.args[0],
      /local t = \{ a = "\}", b = '\{' \} -- a \} in a comment\n\s+ngx\.say\("hello, ", t\.a\)/,
    );
    assert.equal(lua.block, undefined);
    assert.deepEqual(find(all, 'preread_by_lua_block')[0].args, [' ngx.log(ngx.INFO, "stream") ']);
    assert.deepEqual(find(all, 'set')[0].args, ['$greeting', 'hello "world"']);
    const hdr = find(all, 'add_header');
    assert.deepEqual(hdr[0].args, ['X-Test', "it's", 'always']);
    assert.deepEqual(hdr[1].args, ['X-Path', 'a\\tb']);
    assert.deepEqual(find(all, 'proxy_set_header')[2].args, ['Host', '${host}:${server_port}']);
    assert.deepEqual(
      find(all, 'map')[0].block?.map((d) => [d.directive, ...d.args]),
      [
        ['default', 'upgrade'],
        ['', 'close'],
        ['~*^bot', 'robot'],
      ],
    );
    assert.deepEqual(find(all, 'upstream')[1].args, ['quoted_name']);
    // the line after the lua body is counted right
    const fb = find(all, 'location').find((l) => l.args[0] === '@fallback');
    assert.equal(fb?.line, 89);
  });

  it('parses the installed Debian /etc/nginx/nginx.conf', async (t) => {
    if (!existsSync('/etc/nginx/nginx.conf')) {
      t.skip('/etc/nginx/nginx.conf is absent: install the Debian nginx package to run this test');
      return;
    }
    const p = await parseNginxConfig('/etc/nginx/nginx.conf');
    assert.equal(p.status, 'ok', JSON.stringify(p.errors));
    assert.ok(find(p.config[0].parsed, 'http').length === 1);
    assert.ok(p.config.some((c) => c.file === '/etc/nginx/mime.types'));
  });
});

describe('parse errors name file and line, and parsing goes on', () => {
  it('reports two errors in one file and keeps the directives after them', () => {
    const p = parseNginxText('events {}\n}\nhttp {\n  listen 80\n}\nworker_processes 1;\n', 'a.conf');
    assert.equal(p.status, 'failed');
    assert.deepEqual(p.errors, [
      { file: 'a.conf', line: 2, error: 'unexpected "}"' },
      { file: 'a.conf', line: 4, error: 'directive "listen" is not terminated by ";"' },
    ]);
    assert.deepEqual(p.config[0].parsed.at(-1), { directive: 'worker_processes', line: 6, args: ['1'] });
  });

  it('unexpected end of file inside a block and after a directive', () => {
    const p = parseNginxText('http {\n  server {\n    listen 80;\n', 'b.conf');
    assert.deepEqual(p.errors, [{ file: 'b.conf', line: 4, error: 'unexpected end of file, expecting "}"' }]);
    const q = parseNginxText('user nobody', 'c.conf');
    assert.equal(q.errors[0].line, 1);
    assert.match(q.errors[0].error, /^unexpected end of file, expecting ";" or "}"/);
  });

  it('unexpected ";" and "{"', () => {
    const p = parseNginxText(';\n{ a 1; }\nb 2;', 'd.conf');
    assert.deepEqual(
      p.errors.map((e) => [e.line, e.error]),
      [
        [1, 'unexpected ";"'],
        [2, 'unexpected "{"'],
      ],
    );
    assert.deepEqual(p.config[0].parsed, [{ directive: 'b', line: 3, args: ['2'] }]);
  });

  it('unterminated lua block is reported', () => {
    const p = parseNginxText('content_by_lua_block {\n ngx.say("x")\n', 'e.conf');
    assert.equal(p.status, 'failed');
    assert.match(p.errors[0].error, /content_by_lua_block/);
  });

  it('missing include file is an error at the include line in the including file; other files still parse', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ngxparse-'));
    try {
      await mkdir(join(dir, 'inc'));
      await writeFile(join(dir, 'nginx.conf'), 'include missing.conf;\nhttp {\n include inc/*.conf;\n}\n}\n');
      await writeFile(join(dir, 'inc', 'a.conf'), 'server { listen 80 }\n');
      await writeFile(join(dir, 'inc', 'b.conf'), 'server { listen 81; }\n');
      await writeFile(join(dir, 'inc', '.hidden.conf'), 'garbage {\n');
      const p = await parseNginxConfig(join(dir, 'nginx.conf'));
      assert.equal(p.status, 'failed');
      assert.deepEqual(p.errors, [
        {
          file: join(dir, 'nginx.conf'),
          line: 1,
          error: `open() "${join(dir, 'missing.conf')}" failed (2: No such file or directory)`,
        },
        { file: join(dir, 'nginx.conf'), line: 5, error: 'unexpected "}"' },
        { file: join(dir, 'inc', 'a.conf'), line: 1, error: 'directive "listen" is not terminated by ";"' },
      ]);
      assert.deepEqual(
        p.config.map((c) => [relative(dir, c.file), c.status]),
        [
          ['nginx.conf', 'failed'],
          ['inc/a.conf', 'failed'],
          ['inc/b.conf', 'ok'],
        ],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a file included twice is parsed once and both includes point at it', async () => {
    const files: Record<string, string> = {
      '/x/nginx.conf': 'include a.conf;\nhttp { include /x/a.conf; }\n',
      '/x/a.conf': 'x 1;',
    };
    const p = await parseNginxConfig('/x/nginx.conf', {
      readFile: async (f) => {
        if (!(f in files)) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
        return files[f];
      },
    });
    assert.equal(p.config.length, 2);
    assert.deepEqual(
      find(p.config[0].parsed, 'include').map((d) => d.includes),
      [[1], [1]],
    );
  });

  it('singleFile does not follow includes; a missing main file fails with its path', async () => {
    const p = await parseNginxConfig(join(corpus, 'debian', 'nginx.conf'), { singleFile: true });
    assert.equal(p.config.length, 1);
    const q = await parseNginxConfig('/nonexistent/nginx.conf');
    assert.deepEqual(q.errors, [
      {
        file: '/nonexistent/nginx.conf',
        line: null,
        error: 'open() "/nonexistent/nginx.conf" failed (2: No such file or directory)',
      },
    ]);
  });

  it('comments are emitted only when asked', () => {
    const t = 'a 1; # one\n# two\n';
    assert.equal(parseNginxText(t, 'f').config[0].parsed.length, 1);
  });
});
