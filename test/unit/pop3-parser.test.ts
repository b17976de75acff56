// POP3 input: the bounded line reader and the command syntax of RFC 1939 §3 / RFC 2449 §3-4.
// Examples from the RFCs, limits and hostile input, and fast-check properties: nothing throws,
// any chunking gives the same lines, memory stays bounded, valid commands round-trip.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, MAX_ARGUMENT_LENGTH, MAX_USER_NAME_LENGTH, parseCommand, parseNumber, type LineEvent } from '../../src/pop3/parser.js';

const B = (s: string) => Buffer.from(s, 'latin1');

function readAll(chunks: Buffer[], maxLineLength = 20, fatalLength = 100): LineEvent[] {
  const reader = new LineReader({ maxLineLength, fatalLength });
  return chunks.flatMap((c) => reader.push(c));
}

/** Events with lines as latin1 text, for deepEqual. */
function plain(events: LineEvent[]) {
  return events.map((e) => (e.kind === 'line' ? { kind: 'line', text: e.line.toString('latin1') } : e));
}

describe('LineReader', () => {
  it('splits CRLF lines, also across chunks, and keeps an incomplete line', () => {
    assert.deepEqual(plain(readAll([B('USER bob\r\nPASS x y\r\nSTA')])), [
      { kind: 'line', text: 'USER bob' },
      { kind: 'line', text: 'PASS x y' },
    ]);
    assert.deepEqual(plain(readAll([B('US'), B('ER b'), B('ob\r'), B('\nQUIT\r\n')])), [
      { kind: 'line', text: 'USER bob' },
      { kind: 'line', text: 'QUIT' },
    ]);
  });

  it('accepts a bare LF as a line end; a CR elsewhere stays in the line', () => {
    assert.deepEqual(plain(readAll([B('STAT\nNO\rOP\r\n\r\n')])), [
      { kind: 'line', text: 'STAT' },
      { kind: 'line', text: 'NO\rOP' },
      { kind: 'line', text: '' },
    ]);
  });

  it('a line of exactly maxLineLength passes; one byte more is skipped with too-long, and reading goes on', () => {
    const max = 'x'.repeat(20);
    assert.deepEqual(plain(readAll([B(`${max}\r\n${max}y\r\nNOOP\r\n`)])), [
      { kind: 'line', text: max },
      { kind: 'too-long', length: 21 },
      { kind: 'line', text: 'NOOP' },
    ]);
    // Split anywhere, the over-long line is still one event.
    assert.deepEqual(plain(readAll([B(`${max}yy`), B('yyyy'), B('\r\nNOOP\r\n')])), [
      { kind: 'too-long', length: 26 },
      { kind: 'line', text: 'NOOP' },
    ]);
  });

  it('a line going on past fatalLength is fatal, once, and the reader stops', () => {
    const reader = new LineReader({ maxLineLength: 20, fatalLength: 100 });
    assert.deepEqual(reader.push(B('NOOP\r\n' + 'x'.repeat(60))).map((e) => e.kind), ['line']);
    assert.deepEqual(reader.push(B('x'.repeat(60))), [{ kind: 'fatal', length: 100 }]);
    assert.equal(reader.failed, true);
    assert.deepEqual(reader.push(B('\r\nNOOP\r\n')), []);
  });

  it('holds at most maxLineLength + 1 bytes, whatever arrives (no line end for a megabyte)', () => {
    const reader = new LineReader({ maxLineLength: 512, fatalLength: 10_000_000 });
    for (let i = 0; i < 1024; i++) {
      assert.deepEqual(reader.push(Buffer.alloc(1024, 0x41)), []);
      assert.ok(reader.pendingBytes <= 513);
    }
    assert.deepEqual(reader.push(B('\r\n')), [{ kind: 'too-long', length: 1024 * 1024 }]);
    assert.equal(reader.pendingBytes, 0);
  });

  const input = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc
      .array(fc.oneof(fc.constantFrom('USER bob', 'PASS a b', '\r\n', '\n', '\r', 'x'.repeat(25), 'y'.repeat(120), 'LIST 1'), fc.string({ unit: 'binary-ascii', maxLength: 30 })), {
        maxLength: 30,
      })
      .map((p) => B(p.join(''))),
  );

  it('any chunking gives the events of one chunk; lines respect the limit; only the last event can be fatal (property)', () => {
    const cut = input.chain((bytes) =>
      fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: 12 }).map((cuts) => ({
        bytes,
        cuts: cuts.filter((c) => c < bytes.length).sort((a, b) => a - b),
      })),
    );
    fc.assert(
      fc.property(cut, ({ bytes, cuts }) => {
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of [...cuts, bytes.length]) {
          chunks.push(bytes.subarray(prev, c));
          prev = c;
        }
        const whole = readAll([bytes]);
        assert.deepEqual(plain(readAll(chunks)), plain(whole));
        const bytewise = readAll([...bytes].map((b) => Buffer.from([b])));
        assert.deepEqual(plain(bytewise), plain(whole));
        whole.forEach((e, i) => {
          if (e.kind === 'line') {
            assert.ok(e.line.length <= 20);
            assert.ok(!e.line.includes(0x0a));
          }
          if (e.kind === 'fatal') assert.equal(i, whole.length - 1);
        });
      }),
      { numRuns: 1500 },
    );
  });
});

describe('parseCommand', () => {
  it('parses the commands of RFC 1939 and RFC 2449 (keywords case-insensitive)', () => {
    const cases: Array<[string, string, string[]]> = [
      ['USER mrose', 'USER', ['mrose']],
      ['user mrose@example.test', 'USER', ['mrose@example.test']],
      ['PASS secret', 'PASS', ['secret']],
      ['STAT', 'STAT', []],
      ['LIST', 'LIST', []],
      ['list 2', 'LIST', ['2']],
      ['RETR 1', 'RETR', ['1']],
      ['DELE 1', 'DELE', ['1']],
      ['NOOP', 'NOOP', []],
      ['RSET', 'RSET', []],
      ['QUIT', 'QUIT', []],
      ['TOP 1 10', 'TOP', ['1', '10']],
      ['Uidl', 'UIDL', []],
      ['UIDL 2', 'UIDL', ['2']],
      ['CAPA', 'CAPA', []],
      ['STLS', 'STLS', []],
      ['AUTH', 'AUTH', []],
      ['AUTH PLAIN', 'AUTH', ['PLAIN']],
      ['APOP mrose c4c9334bac560ecc979e58001b3e22fb', 'APOP', ['mrose', 'c4c9334bac560ecc979e58001b3e22fb']],
      ['UTF8', 'UTF8', []],
      ['XYZ1 a b', 'XYZ1', ['a', 'b']],
    ];
    for (const [line, name, args] of cases) assert.deepEqual(parseCommand(line), { ok: true, name, args }, line);
  });

  it('PASS takes the rest of the line, spaces included (RFC 1939 §7)', () => {
    assert.deepEqual(parseCommand('PASS correct horse battery staple'), { ok: true, name: 'PASS', args: ['correct horse battery staple'] });
    assert.deepEqual(parseCommand('pass  two  spaces '), { ok: true, name: 'PASS', args: [' two  spaces '] });
    const long = 'p'.repeat(200);
    assert.deepEqual(parseCommand(`PASS ${long}`), { ok: true, name: 'PASS', args: [long] });
    assert.deepEqual(parseCommand('PASS pässwörd'), { ok: true, name: 'PASS', args: ['pässwörd'] });
    assert.equal(parseCommand('PASS ').ok, false);
    assert.equal(parseCommand('PASS a\0b').ok, false);
  });

  it('the initial response of AUTH may be longer than 40 characters; the mechanism may not (RFC 5034)', () => {
    const ir = Buffer.from('\0bob@example.test\0a fairly long password of many words').toString('base64');
    assert.ok(ir.length > MAX_ARGUMENT_LENGTH);
    assert.deepEqual(parseCommand(`AUTH PLAIN ${ir}`), { ok: true, name: 'AUTH', args: ['PLAIN', ir] });
    assert.deepEqual(parseCommand('AUTH PLAIN ='), { ok: true, name: 'AUTH', args: ['PLAIN', '='] });
    assert.equal(parseCommand(`AUTH ${'M'.repeat(41)}`).ok, false);
    assert.equal(parseCommand(`AUTH PLAIN ${ir} extra`).ok, true, 'arity is checked by the session');
  });

  it('arguments are at most 40 characters elsewhere; a user name up to 255 (RFC 2449 §4)', () => {
    const long = 'taro.yamada.sales-department@branch-office.example.co.jp';
    assert.ok(long.length > MAX_ARGUMENT_LENGTH);
    assert.deepEqual(parseCommand(`USER ${long}`), { ok: true, name: 'USER', args: [long] });
    assert.equal(parseCommand(`APOP ${long} c4c9334bac560ecc979e58001b3e22fb`).ok, true);
    assert.equal(parseCommand(`USER ${'u'.repeat(MAX_USER_NAME_LENGTH)}`).ok, true);
    const r = parseCommand(`USER ${'u'.repeat(MAX_USER_NAME_LENGTH + 1)}`);
    assert.equal(r.ok, false);
    assert.equal(r.name, 'USER');
    assert.equal(parseCommand(`TOP 1 ${'9'.repeat(41)}`).ok, false);
    assert.equal(parseCommand(`RETR ${'1'.repeat(41)}`).ok, false);
    assert.equal(parseCommand(`USER bob ${'x'.repeat(41)}`).ok, false, 'only the name itself');
  });

  it('refuses what is not a command, naming the keyword when it was well-formed', () => {
    const bad: Array<[string, string | null]> = [
      ['', null],
      [' ', null],
      [' STAT', null],
      ['ST', null],
      ['STATS', null],
      ['1TOP', null],
      ['ST-T', null],
      ['STÄT', null],
      ['\0\0\0\0', null],
      ['LIST  1', 'LIST'],
      ['LIST 1 ', 'LIST'],
      ['STAT ', 'STAT'],
      ['TOP 1  2', 'TOP'],
      ['LIST \t1', 'LIST'],
      ['USER bob\0', 'USER'],
      ['USER b\x7fob', 'USER'],
      ['RETR 1\r', 'RETR'],
    ];
    for (const [line, name] of bad) {
      const r = parseCommand(line);
      assert.equal(r.ok, false, JSON.stringify(line));
      assert.equal(r.name, name, JSON.stringify(line));
      if (!r.ok) assert.ok(r.error.length > 0 && r.error.length < 100);
    }
  });

  it('never throws; what it accepts keeps the RFC 1939 shape (property)', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 120 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.array(fc.constantFrom('USER', 'PASS', 'AUTH', 'TOP', 'LIST', ' ', '  ', '1', 'x'.repeat(41), '\0', '\t', 'é', '='), { maxLength: 8 }).map((p) => p.join('')),
    );
    fc.assert(
      fc.property(text, (line) => {
        const r = parseCommand(line);
        if (!r.ok) return;
        assert.match(r.name, /^[A-Z][A-Z0-9]{2,3}$/);
        assert.equal(line.slice(0, r.name.length).toUpperCase(), r.name);
        if (r.name === 'PASS' && r.args.length === 0) {
          assert.equal(line.length, 4);
          return;
        }
        if (r.name === 'PASS') {
          assert.equal(r.args.length, 1);
          assert.equal(line, `${line.slice(0, 4)} ${r.args[0]}`);
          return;
        }
        assert.equal([line.slice(0, r.name.length), ...r.args].join(' '), line);
        r.args.forEach((arg, i) => {
          assert.ok(arg.length > 0 && !arg.includes(' '));
          assert.doesNotMatch(arg, /[\x00-\x1f\x7f]/);
          const userName = (r.name === 'USER' || r.name === 'APOP') && i === 0;
          if (!(r.name === 'AUTH' && i === 1)) assert.ok(arg.length <= (userName ? MAX_USER_NAME_LENGTH : MAX_ARGUMENT_LENGTH));
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('well-formed commands round-trip (property)', () => {
    const keyword = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{2,3}$/).filter((k) => k.toUpperCase() !== 'PASS');
    const arg = fc.stringMatching(/^[\x21-\x7e]{1,40}$/);
    fc.assert(
      fc.property(keyword, fc.array(arg, { maxLength: 4 }), (k, args) => {
        assert.deepEqual(parseCommand([k, ...args].join(' ')), { ok: true, name: k.toUpperCase(), args });
      }),
    );
  });
});

describe('parseNumber', () => {
  it('takes decimal digits only', () => {
    assert.equal(parseNumber('1'), 1);
    assert.equal(parseNumber('0'), 0);
    assert.equal(parseNumber('007'), 7);
    assert.equal(parseNumber('4294967296'), 4294967296);
    assert.equal(parseNumber('9'.repeat(30)), Number.MAX_SAFE_INTEGER);
    for (const bad of ['', '-1', '+1', '1.0', '1e3', ' 1', '0x10', 'one', '١']) assert.equal(parseNumber(bad), null, bad);
  });
});
