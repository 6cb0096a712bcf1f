/**
 * Every built-in plugin, in start order: sources that others depend on first.
 * Explicit imports, no registration by side effect. Each is switched on and off by its
 * config section's `enabled` key.
 */
import type { BuiltinPlugin } from '../core/plugin/builtin.js';
import { plugin as hostMetrics } from './host-metrics/index.js';
import { plugin as nginxConfig } from './nginx-config/index.js';
import { plugin as nginxDiscovery } from './nginx-discovery/index.js';
import { plugin as nginxLogs } from './nginx-logs/index.js';
import { plugin as nginxStatus } from './nginx-status/index.js';
import { plugin as otlpExporter } from './otlp-exporter/index.js';

export const builtins: readonly BuiltinPlugin[] = [
  nginxDiscovery,
  nginxConfig,
  nginxStatus,
  nginxLogs,
  hostMetrics,
  otlpExporter,
];
