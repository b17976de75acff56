// Test helpers: a throwaway data directory, the real CLI, and the real server as a child process
// on ephemeral loopback ports. Nothing here mocks Yubin itself.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js, seen from dist/test/helpers/. */
export const CLI = path.resolve(here, '../../src/cli/main.js');

export function makeDataDir(prefix = 'yubin-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cli(dataDir: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const result = spawnSync(process.execPath, [CLI, ...args, '--data', dataDir], {
    input: options.input ?? '',
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the CLI and fails the test with its stderr when it does not exit 0. */
export function cliOk(dataDir: string, args: string[], options: { input?: string } = {}): string {
  const result = cli(dataDir, args, options);
  if (result.status !== 0) throw new Error(`yubin ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

export function writeConfig(dataDir: string, toml: string): void {
  fs.writeFileSync(path.join(dataDir, 'yubin.toml'), toml);
}

export interface RunningYubin {
  proc: ChildProcess;
  /** listener name → port */
  ports: Record<string, number>;
  host: string;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

export async function startYubin(dataDir: string, args: string[] = ['--smtp', '127.0.0.1:0'], env: NodeJS.ProcessEnv = {}): Promise<RunningYubin> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--data', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const ports: Record<string, number> = {};
  let host = '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`yubin did not become ready: ${out}\n${err}`)), 30_000);
    proc.stdout!.on('data', (d: string) => {
      out += d;
      for (const m of out.matchAll(/^(\w+) listening on \[?([^\]\s]+?)\]?:(\d+)$/gm)) {
        ports[m[1]!] = Number(m[3]);
        host = m[2]!;
      }
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`yubin exited with ${code} before it was ready: ${out}\n${err}`));
    });
  });
  return {
    proc,
    ports,
    host,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs a python3 script with arguments; returns its exit status and output. */
export function python(script: string, args: string[] = [], input?: string): CliResult {
  const result = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8', input: input ?? '', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * python() without blocking this process: needed when the script talks to a server that looks
 * things up in a DNS server running inside the test process (startDnsServer).
 */
export function pythonAsync(script: string, args: string[] = [], input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

const SEND_STDIN = `
import smtplib, sys
port, sender, to = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data = sys.stdin.buffer.read()
s = smtplib.SMTP('127.0.0.1', port)
s.sendmail(sender, [to], data)
s.quit()
`;

/** Delivers `data` as is over SMTP with Python's smtplib; fails with its stderr when it does not exit 0. */
export function smtpSendWithPython(port: number, from: string, to: string, data: string): void {
  const result = python(SEND_STDIN, [String(port), from, to], data);
  if (result.status !== 0) throw new Error(`smtplib exited ${result.status}: ${result.stderr}`);
}

export interface UserRow {
  address: string;
  quota: number | null;
  used: number;
  messages: number;
}

export function listUsers(dataDir: string): UserRow[] {
  return JSON.parse(cliOk(dataDir, ['user', 'list', '--json'])) as UserRow[];
}

export function userRow(dataDir: string, address: string): UserRow {
  const row = listUsers(dataDir).find((u) => u.address === address);
  if (!row) throw new Error(`no user ${address}`);
  return row;
}
