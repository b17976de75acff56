import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { missingSubmissionHeaders, removeOwnAuthenticationResults } from '../../src/smtp/submission-headers.js';
import { decodedSubject, fromAddresses, headerValues, rfc5322Date } from '../../src/mime/headers.js';

const msg = (head: string, body = 'body\r\n') => Buffer.from(`${head}\r\n${body}`, 'utf8');

describe('submission headers', () => {
  it('reads every From: address, folded, with display names, groups and several fields', () => {
    const m = msg('From: "Alice, Sales" <Alice@A.test>,\r\n bob@a.test\r\nFrom: team: carol@a.test, dave@a.test;\r\nTo: x@b.test\r\n', 'From: not@header.test\r\n');
    assert.deepEqual(fromAddresses(m), ['alice@a.test', 'bob@a.test', 'carol@a.test', 'dave@a.test']);
    assert.deepEqual(fromAddresses(msg('Subject: none\r\n')), []);
    assert.deepEqual(headerValues(m, 'to'), ['x@b.test']);
    assert.equal(decodedSubject(msg('Subject: =?UTF-8?B?6YO15L6/?= news\r\n')), '郵便 news');
    assert.equal(decodedSubject(msg('From: a@a.test\r\n')), null);
    assert.equal(rfc5322Date(new Date(Date.UTC(2026, 0, 5, 7, 8, 9))), 'Mon, 05 Jan 2026 07:08:09 +0000');
  });

  it('adds Date and Message-ID only when missing (RFC 6409 §8.2, §8.3)', () => {
    const now = new Date(Date.UTC(2026, 11, 1, 9, 30, 0));
    const added = missingSubmissionHeaders(msg('From: a@a.test\r\n'), 'mx.a.test', now);
    assert.match(added, /^Date: Tue, 01 Dec 2026 09:30:00 \+0000\r\nMessage-ID: <[0-9a-f-]+@mx\.a\.test>\r\n$/);
    assert.equal(missingSubmissionHeaders(msg('Date: x\r\nMessage-Id: <y@z>\r\n'), 'mx.a.test', now), '');
  });

  it('removes forged Authentication-Results of this server only (RFC 8601 §5)', () => {
    const original = msg(
      'Authentication-Results: MX.B.test;\r\n spf=pass smtp.mailfrom=ceo@b.test;\r\n dkim=pass\r\n' +
        'Authentication-Results: other.example; spf=fail\r\nSubject: hi\r\n',
      'Authentication-Results: mx.b.test; in the body stays\r\n',
    );
    const cleaned = removeOwnAuthenticationResults(original, 'mx.b.test').toString('utf8');
    assert.equal(cleaned, 'Authentication-Results: other.example; spf=fail\r\nSubject: hi\r\n\r\nAuthentication-Results: mx.b.test; in the body stays\r\n');
    const untouched = msg('Subject: hi\r\n');
    assert.equal(removeOwnAuthenticationResults(untouched, 'mx.b.test'), untouched);
  });
});
