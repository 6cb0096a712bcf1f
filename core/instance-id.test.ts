import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { instanceId, readMachineId } from './instance-id.js';

test('instance id is a stable v5-layout UUID that changes with machine and config file', () => {
  const a = instanceId('3d1219c7c4c5404aaa1f6d2a48adfda4', 'web1', '/etc/nginx-agent/nginx-agent.yaml');
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(instanceId('3d1219c7c4c5404aaa1f6d2a48adfda4', 'web1', '/etc/nginx-agent/nginx-agent.yaml'), a);
  // The machine id wins over the host name: renaming the host keeps the id.
  assert.equal(instanceId('3d1219c7c4c5404aaa1f6d2a48adfda4', 'web2', '/etc/nginx-agent/nginx-agent.yaml'), a);
  assert.notEqual(instanceId('3d1219c7c4c5404aaa1f6d2a48adfda4', 'web1', '/srv/other.yaml'), a);
  assert.notEqual(instanceId('00000000000000000000000000000001', 'web1', '/etc/nginx-agent/nginx-agent.yaml'), a);
  // Without a machine id (containers) the host name decides.
  assert.notEqual(instanceId('', 'pod-a', null), instanceId('', 'pod-b', null));
});

test('readMachineId reads /etc/machine-id, then the D-Bus one, under a root', () => {
  const root = mkdtempSync(join(tmpdir(), 'mid-'));
  assert.equal(readMachineId(root), '');
  mkdirSync(join(root, 'var/lib/dbus'), { recursive: true });
  writeFileSync(join(root, 'var/lib/dbus/machine-id'), 'AAAABBBBCCCCDDDDEEEEFFFF00001111\n');
  assert.equal(readMachineId(root), 'aaaabbbbccccddddeeeeffff00001111');
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/machine-id'), 'not an id\n');
  assert.equal(readMachineId(root), 'aaaabbbbccccddddeeeeffff00001111');
  writeFileSync(join(root, 'etc/machine-id'), '3d1219c7c4c5404aaa1f6d2a48adfda4\n');
  assert.equal(readMachineId(root), '3d1219c7c4c5404aaa1f6d2a48adfda4');
});
