/**
 * A stable identity for one agent installation, used as the OTLP resource attribute
 * `service.instance.id` and shown by `/v1/status`.
 *
 * It is a name-based UUID (SHA-1, RFC 9562 version 5 layout) of the machine id and the absolute
 * config file path: stable across restarts, upgrades and reinstalls, distinct for two agents on one
 * host with different configs, and it needs no writable state directory. Where there is no machine
 * id (most containers) the host name stands in, so each pod of a sidecar deployment is its own instance.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Reads the systemd/D-Bus machine id under `root` ('' when there is none). */
export function readMachineId(root = '/'): string {
  for (const p of ['etc/machine-id', 'var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(join(root, p), 'utf8').trim();
      if (/^[0-9a-f]{32}$/i.test(id)) return id.toLowerCase();
    } catch {
      /* try the next one */
    }
  }
  return '';
}

/** The instance id for a machine id (or host name when empty) and config file (null: embedded defaults). */
export function instanceId(machineId: string, hostname: string, configFile: string | null): string {
  const h = createHash('sha1')
    .update(`nginx-agent\0${machineId || `host:${hostname}`}\0${configFile ?? '(embedded defaults)'}`)
    .digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
