import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createJsonLogger } from '../src/log.ts';

function sink(): { text: () => string; stream: Writable } {
  let text = '';
  return {
    text: () => text,
    stream: new Writable({
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString();
        done();
      },
    }),
  };
}

test('one JSON object per line with level, message, fields, the component and an ISO timestamp', () => {
  const out = sink();
  const log = createJsonLogger('operator', 'info', out.stream);
  log.info('informer synced', { informer: 'AgentConnection' });
  log.warn('informer failed; restarting', { informer: 'Secret', error: 'boom', retryInMs: 1000 });
  const lines = out.text().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  const [first, second] = lines;
  assert.ok(first !== undefined && second !== undefined);
  assert.ok(!Number.isNaN(Date.parse(String(first['timestamp']))));
  assert.deepEqual({ ...first, timestamp: undefined }, { level: 'info', message: 'informer synced', informer: 'AgentConnection', component: 'operator', timestamp: undefined });
  assert.deepEqual({ ...second, timestamp: undefined }, { level: 'warn', message: 'informer failed; restarting', informer: 'Secret', error: 'boom', retryInMs: 1000, component: 'operator', timestamp: undefined });
});

test('the level filters; each logger has its own component', () => {
  const out = sink();
  const log = createJsonLogger('webhook', 'warn', out.stream);
  log.info('hidden');
  log.debug('hidden too');
  log.error('shown', { code: 'X' });
  const lines = out.text().trimEnd().split('\n');
  assert.equal(lines.length, 1);
  assert.deepEqual({ ...(JSON.parse(lines[0] ?? '') as object), timestamp: undefined }, { level: 'error', message: 'shown', code: 'X', component: 'webhook', timestamp: undefined });
});
