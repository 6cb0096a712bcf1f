/**
 * What a built-in plugin folder exports: a name, a config schema with defaults, and a factory.
 * The list of built-ins lives in `plugins/registry.ts` (explicit imports, no side effects).
 *
 * Config section: the plugin's name with `-` turned into `_` (`host-metrics` -> `host_metrics:` in
 * YAML, `NGINX_AGENT_HOST_METRICS_<KEY>` in the environment). Every schema has `enabled`.
 */
import type { Infer, ObjectSchema, Schema, Shape } from '../config/schema.js';
import type { Plugin } from './types.js';

export interface BuiltinPlugin<
  S extends ObjectSchema<Shape & { enabled: Schema<boolean> }> = ObjectSchema<Shape & { enabled: Schema<boolean> }>,
> {
  readonly name: string;
  /** One line for the README and `agent plugins list`. */
  readonly description: string;
  readonly schema: S;
  create(): Plugin<Infer<S>>;
}

export function sectionKey(pluginName: string): string {
  return pluginName.replaceAll('-', '_');
}

/** Identity function that keeps the schema's inferred type for `create`. */
export function defineBuiltin<S extends ObjectSchema<Shape & { enabled: Schema<boolean> }>>(
  p: BuiltinPlugin<S>,
): BuiltinPlugin<S> {
  return p;
}
