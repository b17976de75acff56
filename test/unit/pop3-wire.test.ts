// What POP3 sends of a message: CRLF normalisation, dot-stuffing (RFC 1939 §3), TOP's cut
// (RFC 1939 §7), the maildrop lock, and the [pop3] configuration section.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dotStuff, dotUnstuff, pop3Message, topOf } from '../../src/pop3/wire.js';
import { MaildropLocks } from '../../src/pop3/locks.js';
import { validateConfig } from '../../src/config/load.js';

const B = (s: string) => Buffer.from(s, 'latin1');

describe('pop3Message', () => {
  it('sends CRLF line ends only, and ends the last line', () => {
    assert.equal(pop3Message(B('a\nb\rc\r\nd')).toString('latin1'), 'a\r\nb\r\nc\r\nd\r\n');
    const clean = B('Subject: x\r\n\r\nbody\r\n');
    assert.equal(pop3Message(clean), clean, 'a clean message is not copied');
  });
});

describe('dotStuff', () => {
  it('doubles a dot that starts a line and appends the terminator', () => {
    assert.equal(dotStuff(B('.a\r\nb.\r\n..c\r\n.\r\n')).toString('latin1'), '..a\r\nb.\r\n...c\r\n..\r\n.\r\n');
    assert.equal(dotStuff(B('plain\r\n')).toString('latin1'), 'plain\r\n.\r\n');
    assert.equal(dotStuff(B('')).toString('latin1'), '.\r\n');
  });

  it('dotUnstuff(dotStuff(m)) = m, and the stuffed text never holds CRLF.CRLF before its end (property)', () => {
    const text = fc
      .array(fc.oneof(fc.constantFrom('.', '..', '\r\n', '\n', '\r', 'x', ' .', '.\r\n'), fc.string({ unit: 'binary', maxLength: 10 })), { maxLength: 30 })
      .map((parts) => pop3Message(Buffer.from(parts.join(''), 'utf8')));
    fc.assert(
      fc.property(text, (message) => {
        const wire = dotStuff(message);
        assert.deepEqual(dotUnstuff(wire), message);
        const end = wire.indexOf('\r\n.\r\n');
        assert.ok(end === -1 || end === wire.length - 5, 'the terminator comes last');
        if (message.length > 0) assert.notEqual(wire.subarray(0, 3).toString('latin1'), '.\r\n');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('topOf', () => {
  const message = B('From: a\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\nline 3\r\n');

  it('sends the header, the empty line and n body lines (RFC 1939 §7)', () => {
    assert.deepEqual(topOf(message, 0), { bytes: B('From: a\r\nSubject: s\r\n\r\n'), whole: false });
    assert.deepEqual(topOf(message, 2), { bytes: B('From: a\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\n'), whole: false });
    assert.deepEqual(topOf(message, 3), { bytes: message, whole: true });
    assert.deepEqual(topOf(message, 1000), { bytes: message, whole: true });
    assert.deepEqual(topOf(message, Number.MAX_SAFE_INTEGER), { bytes: message, whole: true });
  });

  it('a message without body, or without header', () => {
    const headerOnly = B('Subject: s\r\n');
    assert.deepEqual(topOf(headerOnly, 0), { bytes: headerOnly, whole: true });
    const bodyOnly = B('\r\nbody 1\r\nbody 2\r\n');
    assert.deepEqual(topOf(bodyOnly, 1), { bytes: B('\r\nbody 1\r\n'), whole: false });
    assert.deepEqual(topOf(B('Subject: s\r\n\r\n'), 0), { bytes: B('Subject: s\r\n\r\n'), whole: true });
  });

  it('is always a prefix ending in CRLF, growing with n (property)', () => {
    const text = fc
      .array(fc.constantFrom('H: v\r\n', '\r\n', 'line\r\n', '.dot\r\n', ' folded\r\n'), { minLength: 1, maxLength: 20 })
      .map((parts) => B(parts.join('')));
    fc.assert(
      fc.property(text, fc.nat(25), (m, n) => {
        const a = topOf(m, n);
        const b = topOf(m, n + 1);
        assert.deepEqual(a.bytes, m.subarray(0, a.bytes.length));
        assert.ok(b.bytes.length >= a.bytes.length);
        assert.equal(a.bytes.subarray(-2).toString('latin1'), '\r\n');
        assert.equal(a.whole, a.bytes.length === m.length);
      }),
    );
  });
});

describe('MaildropLocks', () => {
  it('one holder per account until released', () => {
    const locks = new MaildropLocks();
    assert.equal(locks.acquire(1), true);
    assert.equal(locks.acquire(1), false);
    assert.equal(locks.acquire(2), true);
    locks.release(1);
    assert.equal(locks.acquire(1), true);
  });
});

describe('[pop3] configuration', () => {
  it('has RFC-minded defaults and refuses an idle timeout under 10 minutes (RFC 1939 §3)', () => {
    assert.deepEqual(validateConfig({}).pop3, { max_line_length: 4096, max_connections: 1000, max_connections_per_ip: 50, idle_timeout: 600, login_timeout: 60 });
    assert.equal(validateConfig({ pop3: { idle_timeout: '1h' } }).pop3.idle_timeout, 3600);
    assert.throws(() => validateConfig({ pop3: { idle_timeout: '5m' } }), /pop3\.idle_timeout: .*10 minutes/);
    assert.throws(() => validateConfig({ pop3: { max_line_length: 100 } }), /pop3\.max_line_length/);
    assert.throws(() => validateConfig({ pop3: { max_lines: 1 } }), /unknown setting pop3\.max_lines/);
  });
});
