import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseHostPort } from '../src/address.ts';

describe('parseHostPort', () => {
  test('host:port and [ipv6]:port; port 0 picks a free one', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseHostPort('0.0.0.0:9443'), { host: '0.0.0.0', port: 9443 });
    assert.deepEqual(parseHostPort('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseHostPort('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseHostPort('[::]:65535'), { host: '::', port: 65535 });
  });

  test('anything else is undefined', () => {
    for (const text of ['', '8080', ':8080', 'localhost', 'localhost:', 'localhost:http', 'localhost:-1', 'localhost:65536', 'localhost:123456', '::1:80', '[::1]', '[::1]80', '[]:80', 'a:b:80', 'host:80 ', ' host:80x']) {
      assert.equal(parseHostPort(text), undefined, text);
    }
  });

  test('every host without colons or brackets and every port round-trips; bracketed IPv6 too', () => {
    const hostChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: hostChar, minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 65535 }), (host, port) => {
        assert.deepEqual(parseHostPort(`${host}:${String(port)}`), { host, port });
      }),
    );
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 0, max: 65535 }), (host, port) => {
        assert.deepEqual(parseHostPort(`[${host}]:${String(port)}`), { host, port });
        assert.equal(parseHostPort(`${host}:${String(port)}`), undefined);
      }),
    );
  });
});
