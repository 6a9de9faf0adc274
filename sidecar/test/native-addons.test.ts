/**
 * No native addon the sidecar loads may use node::ObjectWrap's environment cleanup hooks: built
 * against Node >= 24.19 headers, its destructor aborts the whole process when the GC frees a
 * wrapped object outside a context (nodejs/node#65446; ssh2's crypto addon hit it, which is why
 * ssh2's install script is not approved and it uses node:crypto). Checked on the addons mapped
 * into a process that loaded both proxies and the masker (re2 and Airlock's own use Nan's or
 * N-API's wrappers), with nm.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

test('the addons the sidecar loads do not call RemoveEnvironmentCleanupHook', async () => {
  const { loadProxy } = await import('@airlock/sidecar');
  await loadProxy('postgres');
  await loadProxy('ssh');
  const { compileMasker } = await import('@airlock/policy');
  compileMasker([{ name: 'p', match: { pattern: 'EMP-[0-9]+' }, action: { type: 'hash' } }], Buffer.from('k'));
  const addons = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5] ?? '').filter((p) => p.endsWith('.node')))];
  assert.ok(addons.some((p) => p.includes('re2')), `re2 is loaded (${addons.join(', ')})`);
  assert.ok(addons.some((p) => p.includes('airlock_native')), 'the native addon is loaded');
  for (const addon of addons) {
    const nm = spawnSync('nm', ['-D', '--undefined-only', addon], { encoding: 'utf8' });
    assert.equal(nm.status, 0, nm.stderr);
    assert.doesNotMatch(nm.stdout, /RemoveEnvironmentCleanupHook/, `${addon} uses node::ObjectWrap's cleanup hooks`);
  }
});
