// Several Yubin "hosts" on loopback addresses (127.0.0.2, 127.0.0.3, ...), each on port 25, each
// publishing in a test DNS server exactly what `yubin dns-records` tells an admin to publish.
// They find each other through MX records, as servers on the internet do.

import { cliOk, makeDataDir, startYubin, writeConfig, type RunningYubin } from './yubin.js';
import type { TestDnsServer } from './dns-server.js';

export interface MailHostOptions {
  domain: string;
  /** Loopback address of the host (its MX A record, and where its outbound mail comes from). */
  ip: string;
  dns: TestDnsServer;
  /** Local parts of the users to create; each gets the password PASSWORD. */
  users: string[];
  /** Extra TOML appended to the generated configuration (sections must not repeat [queue] / [dns]). */
  extraConfig?: string;
  /** [queue] settings, as TOML lines. */
  queue?: string;
  /** Generate DKIM keys and publish them (default true). */
  dkim?: boolean;
  /** Other domains this host also receives mail for (added, not published). */
  otherDomains?: string[];
}

export interface MailHost {
  domain: string;
  hostname: string;
  ip: string;
  dataDir: string;
  server: RunningYubin;
  options: MailHostOptions;
  /** Restarts the server on the same data directory and addresses (after stop() or kill()). */
  restart(): Promise<RunningYubin>;
}

export const PASSWORD = 'correct horse battery staple';

export async function startMailHost(options: MailHostOptions): Promise<MailHost> {
  const { domain, ip, dns } = options;
  const hostname = `mx.${domain}`;
  const dataDir = makeDataDir(`yubin-${domain}-`);
  writeConfig(
    dataDir,
    [
      `hostname = "${hostname}"`,
      '[dns]',
      `servers = ["${dns.address}"]`,
      'timeout = "3s"',
      // Tests change records while the hosts run.
      'cache = 0',
      '[queue]',
      `source_address = "${ip}"`,
      'connect_timeout = "3s"',
      'command_timeout = "10s"',
      'poll_interval = 0.2',
      options.queue ?? 'retry_schedule = "1s"',
      '[storage]',
      'fsync = false',
      options.extraConfig ?? '',
    ].join('\n') + '\n',
  );
  cliOk(dataDir, ['domain', 'add', domain]);
  for (const other of options.otherDomains ?? []) cliOk(dataDir, ['domain', 'add', other]);
  for (const user of options.users) cliOk(dataDir, ['user', 'add', `${user}@${domain}`, '--password', PASSWORD]);
  if (options.dkim !== false) cliOk(dataDir, ['dkim', 'generate', domain]);

  // Publish what the admin is told to publish, plus the A record of the MX host.
  const records = JSON.parse(cliOk(dataDir, ['dns-records', domain, '--json'])) as Array<{ name: string; type: string; value: string }>;
  dns.zone.mx ??= {};
  dns.zone.txt ??= {};
  dns.zone.a ??= {};
  for (const record of records) {
    const name = record.name.replace(/\.$/, '');
    if (record.type === 'MX') {
      const [priority, exchange] = record.value.split(/\s+/);
      (dns.zone.mx[name] ??= []).push({ priority: Number(priority), exchange: exchange!.replace(/\.$/, '') });
    } else if (record.type === 'TXT') {
      (dns.zone.txt[name] ??= []).push(record.value);
    }
  }
  dns.zone.a[hostname] = [ip];

  const args = ['--smtp', `${ip}:25`, '--submission', `${ip}:0`, '--submissions', `${ip}:0`, '--imap', `${ip}:0`, '--dns', dns.address];
  const host: MailHost = {
    domain,
    hostname,
    ip,
    dataDir,
    options,
    server: await startYubin(dataDir, args),
    async restart() {
      host.server = await startYubin(dataDir, args);
      return host.server;
    },
  };
  return host;
}
