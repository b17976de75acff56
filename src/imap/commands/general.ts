// Commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971); and ENABLE (RFC 5161).

import { ok, bad, type CommandSpec } from '../context.js';
import { tokenText } from '../protocol/parser.js';

const ANY = ['not-authenticated', 'authenticated', 'selected'] as const;

export const generalCommands: CommandSpec[] = [
  {
    name: 'CAPABILITY',
    states: [...ANY],
    async handle({ session }) {
      session.send(`* CAPABILITY ${session.capabilities().join(' ')}\r\n`);
      return ok();
    },
  },
  {
    name: 'NOOP',
    states: [...ANY],
    async handle({ args }) {
      if (args.length > 0) throw bad('NOOP takes no arguments');
      // Updates are flushed by the connection before every tagged reply.
      return ok();
    },
  },
  {
    name: 'CHECK',
    states: ['selected'],
    async handle() {
      return ok();
    },
  },
  {
    name: 'LOGOUT',
    states: [...ANY],
    async handle({ session }) {
      session.send('* BYE Yubin IMAP logging out\r\n');
      session.state = 'logout';
      return ok();
    },
  },
  {
    name: 'ID',
    states: [...ANY],
    async handle({ session }) {
      session.send('* ID ("name" "Yubin" "vendor" "Yubin")\r\n');
      return ok();
    },
  },
  {
    name: 'ENABLE',
    states: ['authenticated', 'selected'],
    async handle({ session, args }) {
      if (args.length === 0) throw bad('ENABLE needs at least one capability');
      const known = new Set(['CONDSTORE', 'QRESYNC', 'UTF8=ACCEPT', 'IMAP4REV2']);
      const newly: string[] = [];
      for (const arg of args) {
        const name = tokenText(arg).toUpperCase();
        if (!known.has(name) || session.enabled.has(name)) continue;
        session.enabled.add(name);
        // RFC 7162 §3.2.3: enabling QRESYNC implies CONDSTORE.
        if (name === 'QRESYNC') session.enabled.add('CONDSTORE');
        newly.push(name);
      }
      session.send(`* ENABLED${newly.map((n) => ' ' + n).join('')}\r\n`);
      return ok();
    },
  },
];
