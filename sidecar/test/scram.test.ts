import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScramClient, ScramError, md5Password } from '../src/pg/scram.ts';

test('RFC 7677 test vector', () => {
  const c = new ScramClient('pencil', { nonce: 'rOprNGfwEbeRWgbNEkqO', username: 'user' });
  assert.equal(c.clientFirst(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const final = c.clientFinal('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
  assert.equal(final, 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
  assert.doesNotThrow(() => {
    c.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });
});

test('a wrong server signature, a foreign nonce and server errors are refused', () => {
  const c = new ScramClient('pencil', { nonce: 'rOprNGfwEbeRWgbNEkqO', username: 'user' });
  assert.throws(() => c.clientFinal('r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'), ScramError);
  c.clientFinal('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
  assert.throws(() => {
    c.verify('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  }, /server signature does not match/);
  assert.throws(() => {
    c.verify('e=invalid-proof');
  }, /server rejected the SCRAM exchange: invalid-proof/);
  assert.throws(() => new ScramClient('x').clientFinal('garbage'), /malformed SCRAM attribute/);
});

test('MD5 password response', () => {
  // md5(md5("secret" + "bob") + salt), computed independently with Python's hashlib
  assert.equal(md5Password('bob', 'secret', Buffer.from([1, 2, 3, 4])), 'md5f21dfe33ff3a9e03dbc3e008251fe5cc');
});
