import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../src/queue.ts';
import { RateLimiter } from '../src/rate-limiter.ts';
import { FakeClock } from './fake-clock.ts';

/** the key get() gives when one is ready now (never waits) */
async function next(queue: WorkQueue): Promise<string | undefined> {
  const marker = Symbol('waiting');
  const got = await Promise.race([queue.get(), new Promise<typeof marker>((resolve) => setImmediate(() => { resolve(marker); }))]);
  assert.notEqual(got, marker, 'no key was ready');
  return got === marker ? undefined : got;
}

/** whether a get() would wait (no key ready) */
async function idle(queue: WorkQueue): Promise<boolean> {
  const marker = Symbol('waiting');
  const probe = queue.get();
  const got = await Promise.race([probe, new Promise<typeof marker>((resolve) => setImmediate(() => { resolve(marker); }))]);
  return got === marker;
}

describe('WorkQueue', () => {
  test('a key added several times before a worker takes it is processed once', async () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    queue.add('AgentConnection/ns/a');
    queue.add('MaskingPolicy/ns/p');
    queue.add('AgentConnection/ns/a');
    assert.equal(queue.length, 2);
    assert.equal(await next(queue), 'AgentConnection/ns/a');
    assert.equal(await next(queue), 'MaskingPolicy/ns/p');
    assert.equal(queue.length, 0);
  });

  test('a key added while it is processed is not handed out again until done, then once', async () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    queue.add('k');
    const key = await next(queue);
    assert.equal(key, 'k');
    queue.add('k');
    queue.add('k');
    assert.equal(queue.length, 0, 'not ready while processing');
    assert.ok(await idle(queue), 'a second worker gets nothing');
    queue.done('k');
    assert.equal(queue.length, 0, 'handed straight to the waiting worker');
  });

  test('two workers never process the same key at once', async () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    let running = 0;
    let maximum = 0;
    let runs = 0;
    const worker = async (): Promise<void> => {
      for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
        running++;
        maximum = Math.max(maximum, running);
        runs++;
        await new Promise((resolve) => setImmediate(resolve));
        if (runs < 5) queue.add(key);
        running--;
        queue.done(key);
      }
    };
    queue.add('k');
    const workers = [worker(), worker(), worker()];
    await new Promise((resolve) => setTimeout(resolve, 20));
    await queue.shutDown();
    await Promise.all(workers);
    assert.equal(maximum, 1);
    assert.equal(runs, 5);
  });

  test('failed keys come back after a backoff that doubles, and starts over after forget', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock, limiter: new RateLimiter({ baseDelayMs: 5, maxDelayMs: 40, qps: 1000, burst: 1000 }) });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      queue.addRateLimited('k');
      let waited = 0;
      while (queue.length === 0) {
        clock.advance(1);
        waited++;
      }
      delays.push(waited);
      assert.equal(await next(queue), 'k');
      queue.done('k');
    }
    assert.deepEqual(delays, [5, 10, 20, 40, 40, 40]);
    assert.equal(queue.failures('k'), 6);
    queue.forget('k');
    assert.equal(queue.failures('k'), 0);
    queue.addRateLimited('k');
    clock.advance(4);
    assert.equal(queue.length, 0);
    clock.advance(1);
    assert.equal(queue.length, 1);
  });

  test('an earlier delay of the same key wins over a later one', () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    queue.addAfter('k', 100);
    queue.addAfter('k', 10);
    queue.addAfter('k', 50);
    assert.equal(clock.pending, 1);
    clock.advance(10);
    assert.equal(queue.length, 1);
  });

  test('shutDown drains: queued keys are still handed out, new ones are refused, delayed ones dropped', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    queue.add('a');
    queue.add('b');
    queue.addAfter('c', 1000);
    let drained = false;
    const shutDown = queue.shutDown().then(() => {
      drained = true;
    });
    queue.add('d');
    assert.equal(clock.pending, 0);
    assert.equal(await next(queue), 'a');
    queue.done('a');
    assert.equal(await next(queue), 'b');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(drained, false, 'b is still being processed');
    queue.done('b');
    await shutDown;
    assert.equal(drained, true);
    assert.equal(await queue.get(), undefined);
  });

  test('a key added while processing before the shutdown is still processed while draining', async () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    queue.add('k');
    assert.equal(await next(queue), 'k');
    queue.add('k');
    const shutDown = queue.shutDown();
    queue.done('k');
    assert.equal(await next(queue), 'k');
    queue.done('k');
    await shutDown;
  });

  test('idle workers are released by shutDown', async () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    const waiting = queue.get();
    await queue.shutDown();
    assert.equal(await waiting, undefined);
  });
});

describe('RateLimiter', () => {
  test('per-key exponential backoff from 5 ms, capped at 1000 s, independent per key', () => {
    const limiter = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 1e9, burst: 1e9 });
    const delays = Array.from({ length: 20 }, () => limiter.when('a', 0));
    assert.deepEqual(delays.slice(0, 4), [5, 10, 20, 40]);
    assert.equal(delays[17], 5 * 2 ** 17);
    assert.equal(delays[18], 1_000_000);
    assert.equal(delays[19], 1_000_000);
    assert.equal(limiter.when('b', 0), 5);
  });

  test('the token bucket caps the overall retry rate once the burst is spent', () => {
    const limiter = new RateLimiter({ baseDelayMs: 1, maxDelayMs: 1, qps: 10, burst: 2 });
    assert.equal(limiter.when('a', 0), 1);
    assert.equal(limiter.when('b', 0), 1);
    assert.equal(limiter.when('c', 0), 100);
    assert.equal(limiter.when('d', 0), 200);
    // a second later the debt is repaid and tokens refilled
    assert.equal(limiter.when('e', 1300), 1);
  });
});

describe('WorkQueue.shutDown without draining', () => {
  test('queued keys are dropped; the key being processed finishes and is not run again', async () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    queue.add('a');
    queue.add('b');
    assert.equal(await next(queue), 'a');
    queue.add('a');
    const shutDown = queue.shutDown({ drain: false });
    assert.equal(queue.length, 0);
    queue.done('a');
    await shutDown;
    assert.equal(await queue.get(), undefined);
  });
});
