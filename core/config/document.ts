/**
 * Renders the documented default config (config/agent.yaml) from the schemas: every key with its
 * description as a comment and its default value. A test keeps the committed file in sync.
 */
import { stringify } from 'yaml';
import { displayConfig } from './load.js';
import type { Issue, ObjectSchema, Schema, Shape } from './schema.js';

function comment(text: string, indent: string): string {
  return text
    .split('\n')
    .map((l) => `${indent}# ${l}`.trimEnd())
    .join('\n');
}

function render(schema: ObjectSchema<Shape>, indent: string, envPrefix: string): string {
  let out = '';
  for (const [key, s] of Object.entries(schema.shape)) {
    const env = `${envPrefix}_${key.toUpperCase()}`;
    if (s.kind === 'object') {
      if (indent === '' && out !== '') out += '\n';
      if (s.description) out += `${comment(s.description, indent)}\n`;
      out += `${indent}${key}:\n${render(s as ObjectSchema<Shape>, `${indent}  `, env)}`;
      continue;
    }
    const def = defaultOf(s);
    const kindNote =
      s.kind === 'duration'
        ? ' Duration with a unit: 500ms, 15s, 1m, 2h.'
        : s.kind.startsWith('list')
          ? ' In the environment: comma-separated.'
          : s.kind.startsWith('mapping')
            ? ' In the environment: key=value,key=value.'
            : '';
    out += `${comment(`${s.description || key}${kindNote} Env: ${env}`, indent)}\n`;
    const value = stringify({ [key]: def }, { lineWidth: 0 }).trimEnd();
    out += `${value
      .split('\n')
      .map((l) => indent + l)
      .join('\n')}\n`;
  }
  return out;
}

function defaultOf(s: Schema<unknown>): unknown {
  const issues: Issue[] = [];
  const v = s.parse(undefined, [], issues);
  return displayConfig(s, v);
}

export function renderDefaultConfig(root: ObjectSchema<Shape>): string {
  return (
    '# nginx-agent configuration: every key with its default.\n' +
    '# Precedence: command-line flags > NGINX_AGENT_<SECTION>_<KEY> environment variables > this file > defaults.\n' +
    '# Check a file with: agent config check --config FILE\n' +
    '# (Generated from the schemas by `npm run gen:config`; edit descriptions in the code.)\n\n' +
    render(root, '', 'NGINX_AGENT')
  );
}
