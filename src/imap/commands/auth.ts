// STARTTLS (RFC 9051 §6.2.1), LOGIN (§6.2.3), AUTHENTICATE PLAIN / LOGIN with SASL-IR (RFC 4959).
// Pre-login code cannot reach mail: only authenticate() yields the handle loggedIn() needs.

import { authenticate } from '../../auth/authenticate.js';
import { ok, no, bad, SilentResult, type CommandSpec, type Session } from '../context.js';
import { tokenText } from '../protocol/parser.js';

async function logIn(session: Session, username: string, password: string) {
  if (!session.plaintextAllowed()) throw no('Plaintext authentication is disabled here; use STARTTLS first', 'PRIVACYREQUIRED');
  const { store, throttle } = session.services;
  const user = await authenticate(store, throttle, session.remoteAddress, username, password);
  if (!user) {
    session.services.log.info({ event: 'auth-failure', protocol: 'imap', session: session.id, ip: session.remoteAddress, user: username.slice(0, 100) }, 'imap authentication failed');
    throw no('Authentication failed', 'AUTHENTICATIONFAILED');
  }
  session.loggedIn(user);
  return ok('Logged in', `CAPABILITY ${session.capabilities().join(' ')}`);
}

function decodeBase64(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text.trim())) throw bad('Invalid base64');
  return Buffer.from(text.trim(), 'base64');
}

export const authCommands: CommandSpec[] = [
  {
    name: 'STARTTLS',
    states: ['not-authenticated'],
    async handle({ session, tag }) {
      if (!session.connection.tlsAvailable) throw bad('TLS is already active');
      // The OK goes out in plaintext, then the handshake (the tagged reply is written here,
      // before the socket changes hands, so the connection must not write it again).
      session.send(`${tag} OK Begin TLS negotiation now\r\n`);
      await session.connection.startTls();
      throw new SilentResult();
    },
  },
  {
    name: 'LOGIN',
    states: ['not-authenticated'],
    async handle({ session, args }) {
      if (args.length !== 2) throw bad('LOGIN needs a user name and a password');
      return logIn(session, tokenText(args[0]!), tokenText(args[1]!));
    },
  },
  {
    name: 'AUTHENTICATE',
    states: ['not-authenticated'],
    async handle({ session, args }) {
      if (args.length < 1 || args.length > 2) throw bad('AUTHENTICATE needs a mechanism');
      const mechanism = tokenText(args[0]!).toUpperCase();
      const initial = args[1] ? tokenText(args[1]) : null;
      const ask = async (challenge: string): Promise<Buffer> => {
        session.connection.continueRequest(challenge);
        const line = await session.connection.readLine();
        if (line === null) throw no('Connection closed');
        // RFC 9051 §6.2.2: "*" cancels the exchange.
        if (line.trim() === '*') throw bad('Authentication cancelled');
        return decodeBase64(line);
      };
      if (mechanism === 'PLAIN') {
        // RFC 4616: [authzid] NUL authcid NUL passwd; RFC 4959: "=" is an empty initial response.
        const response = initial === null ? await ask('') : initial === '=' ? Buffer.alloc(0) : decodeBase64(initial);
        const parts = response.toString('utf8').split('\0');
        if (parts.length !== 3) throw bad('Malformed PLAIN response');
        const [authzid, authcid, password] = parts as [string, string, string];
        if (authzid && authzid.toLowerCase() !== authcid.toLowerCase()) throw no('Authorization identity differs', 'AUTHORIZATIONFAILED');
        return logIn(session, authcid, password);
      }
      if (mechanism === 'LOGIN') {
        const username = initial !== null && initial !== '=' ? decodeBase64(initial) : await ask(Buffer.from('Username:').toString('base64'));
        const password = await ask(Buffer.from('Password:').toString('base64'));
        return logIn(session, username.toString('utf8'), password.toString('utf8'));
      }
      throw no(`Unsupported mechanism ${mechanism.slice(0, 40)}`, 'CANNOT');
    },
  },
];
