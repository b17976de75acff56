// yubin serve: runs the server until SIGTERM/SIGINT, then stops accepting, finishes what is in
// flight and exits 0.

import { LISTENER_NAMES, startServer, type ListenerName, type RunningServer, parseHostPort } from '../../server.js';
import { generatePassword, hashPassword } from '../../auth/password.js';
import { CliError, UsageError, loadContext, parse } from '../context.js';
import { SERVE_HELP } from './serve-help.js';

const DEMO_DOMAIN = 'example.test';
const DEMO_USER = `demo@${DEMO_DOMAIN}`;

export async function serveCommand(args: string[]): Promise<void> {
  const listenerOptions = Object.fromEntries(LISTENER_NAMES.map((name) => [name, { type: 'string' as const }])) as Record<ListenerName, { type: 'string' }>;
  const { values, positionals } = parse(args, {
    ...listenerOptions,
    hostname: { type: 'string' },
    dns: { type: 'string' },
    'init-demo': { type: 'boolean' },
  });
  if (values.help) {
    console.log(SERVE_HELP);
    return;
  }
  if (positionals.length > 0) throw new UsageError(SERVE_HELP);
  const loaded = loadContext(values);
  const { config } = loaded;
  if (values.hostname) config.hostname = values.hostname;
  const given = LISTENER_NAMES.filter((name) => values[name] !== undefined);
  if (given.length > 0) {
    for (const name of LISTENER_NAMES) config.listeners[name] = values[name] ?? '';
  }
  for (const name of given) {
    try {
      parseHostPort(config.listeners[name]);
    } catch (err) {
      throw new UsageError(`--${name}: ${(err as Error).message}`);
    }
  }
  if (values.dns !== undefined) {
    // The resolver of outbound delivery (MX lookups) and sender checks; replaces dns.servers.
    try {
      parseHostPort(values.dns);
    } catch (err) {
      throw new UsageError(`--dns: ${(err as Error).message}`);
    }
    config.dns.servers = [values.dns];
  }

  // Signals are handled from the start: one that arrives while the server is still starting
  // stops it as soon as it is up, cleanly, instead of killing the process half-way.
  let server: RunningServer | null = null;
  let stopSignal: string | null = null;
  const stop = (signal: string) => {
    if (stopSignal) return;
    stopSignal = signal;
    if (server) stopServer(server, signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  try {
    server = await startServer(config, loaded.dataDir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new CliError(`cannot listen: address in use (${e.message.replace(/^listen EADDRINUSE: address already in use /, '')})`);
    if (e.code === 'EACCES') throw new CliError(`cannot listen: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`);
    throw new CliError((err as Error).message);
  }

  let demo: { password: string } | null = null;
  if (values['init-demo'] && !stopSignal && (await server.store.listDomains()).length === 0) {
    await server.store.addDomain(DEMO_DOMAIN);
    const password = generatePassword();
    await server.store.addAccount(DEMO_USER, await hashPassword(password));
    demo = { password };
  }

  for (const l of server.listening) console.log(`${l.name} listening on ${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`);
  if (values['init-demo']) printQuickStart(server.listening, demo, loaded.dataDir);
  console.log('ready');
  if (stopSignal) stopServer(server, stopSignal);
}

function stopServer(server: RunningServer, signal: string): void {
  console.log(`${signal}: stopping (finishing deliveries in progress)`);
  server.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`yubin: error while stopping: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
function printQuickStart(listening: Array<{ name: string; host: string; port: number }>, demo: { password: string } | null, dataDir: string): void {
  const smtp = listening.find((l) => l.name === 'smtp');
  const lines: string[] = [''];
  if (demo) {
    lines.push(`First run: created the domain ${DEMO_DOMAIN} and the user ${DEMO_USER}`);
    lines.push(`  password: ${demo.password}    (shown once; change it with: npx yubin user passwd ${DEMO_USER})`);
  } else {
    lines.push(`Data directory: ${dataDir}`);
  }
  if (smtp) {
    lines.push('', 'Send a message to the demo user:');
    lines.push(
      `  python3 -c "import smtplib; s = smtplib.SMTP('${smtp.host}', ${smtp.port}); s.sendmail('you@example.org', ['${DEMO_USER}'], 'Subject: hello\\r\\n\\r\\nHello from Python\\r\\n'); s.quit()"`,
    );
    lines.push(`  swaks --server ${smtp.host}:${smtp.port} --to ${DEMO_USER}`);
    lines.push('Then see it counted:', '  npx yubin user list');
  }
  const submission = listening.find((l) => l.name === 'submission');
  if (submission) {
    const password = demo ? demo.password : 'PASSWORD';
    lines.push('', `Send mail as the demo user through submission (STARTTLS, then AUTH) on ${submission.host}:${submission.port}:`);
    lines.push(
      `  python3 -c "import smtplib, ssl; s = smtplib.SMTP('${submission.host}', ${submission.port}); s.starttls(context=ssl._create_unverified_context()); s.login('${DEMO_USER}', '${password}'); s.sendmail('${DEMO_USER}', ['${DEMO_USER}'], 'From: ${DEMO_USER}\\r\\nSubject: sent\\r\\n\\r\\nSent through submission\\r\\n'); s.quit()"`,
    );
  }
  const imap = listening.find((l) => l.name === 'imap');
  if (imap) {
    lines.push('', `Read it over IMAP (or point Thunderbird at ${imap.host}:${imap.port}, STARTTLS, normal password):`);
    const password = demo ? demo.password : 'PASSWORD';
    lines.push(
      `  python3 -c "import imaplib; m = imaplib.IMAP4('${imap.host}', ${imap.port}); m.login('${DEMO_USER}', '${password}'); m.select(); print(m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')); m.logout()"`,
    );
  }
  const pop3 = listening.find((l) => l.name === 'pop3');
  if (pop3) {
    const password = demo ? demo.password : 'PASSWORD';
    lines.push('', 'Or download it over POP3:');
    lines.push(`  python3 -c "import poplib; p = poplib.POP3('${pop3.host}', ${pop3.port}); p.user('${DEMO_USER}'); p.pass_('${password}'); print(p.stat()); p.quit()"`);
  }
  lines.push('');
  console.log(lines.join('\n'));
}
