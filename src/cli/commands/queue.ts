// yubin queue list|show|retry|delete: the outbound queue, as the administrator sees it.
// Works on the store directly; a running server picks up retried messages within queue.poll_interval.

import type { QueueMessage, QueueRecipient, Store } from '../../store/types.js';
import { UsageError, CliError, loadContext, parse, printJson, withStore } from '../context.js';

export const QUEUE_HELP = `yubin queue list [--json]          messages waiting or finishing, each recipient's state and last reply
yubin queue show ID [--json]       one message: envelope, recipients, headers
yubin queue retry ID|--all         make queued recipients due now
yubin queue delete ID              remove a message from the queue (no bounce is sent)`;

function replyText(r: QueueRecipient): string {
  if (!r.lastReply) return '';
  const { code, enhanced, text, remoteMta } = r.lastReply;
  return `${code}${enhanced ? ` ${enhanced}` : ''} ${text}${remoteMta ? ` (${remoteMta})` : ''}`;
}

/** The JSON shape of `queue list --json` and `queue show --json`: dates as ISO strings. */
function asJson(message: QueueMessage) {
  return {
    id: message.id,
    sender: message.sender,
    size: message.size,
    kind: message.kind,
    envid: message.envid,
    ret: message.ret,
    receivedAt: message.receivedAt.toISOString(),
    expiresAt: message.expiresAt.toISOString(),
    recipients: message.recipients.map((r) => ({
      id: r.id,
      address: r.address,
      state: r.state,
      attempts: r.attempts,
      nextAttemptAt: r.state === 'queued' ? r.nextAttemptAt.toISOString() : null,
      lastAttemptAt: r.lastAttemptAt ? r.lastAttemptAt.toISOString() : null,
      lastReply: r.lastReply,
      notify: r.notify,
      orcpt: r.orcpt,
      delayNotified: r.delayNotified,
    })),
  };
}

function parseId(value: string | undefined, usage: string): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(usage);
  return Number(value);
}

async function headersOf(store: Store, message: QueueMessage): Promise<string> {
  try {
    const bytes = await store.readBlob(message.blobId);
    const end = bytes.indexOf('\r\n\r\n');
    return bytes.subarray(0, end >= 0 ? end : Math.min(bytes.length, 8192)).toString('utf8');
  } catch {
    return '(message content unavailable)';
  }
}

export async function queueCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(QUEUE_HELP);
    return;
  }
  switch (sub) {
    case 'list': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      if (positionals.length > 0) throw new UsageError('usage: yubin queue list [--json]');
      const messages = await withStore(loadContext(values), (store) => store.listQueue());
      if (values.json) return printJson(messages.map(asJson));
      if (messages.length === 0) return console.log('the queue is empty');
      for (const m of messages) {
        console.log(`${m.id}\t${m.sender || '<>'}\t${m.size} bytes\treceived ${m.receivedAt.toISOString()}\texpires ${m.expiresAt.toISOString()}${m.kind === 'dsn' ? '\t(delivery report)' : ''}`);
        for (const r of m.recipients) {
          const when = r.state === 'queued' ? `next ${r.nextAttemptAt.toISOString()}` : '';
          console.log(`\t${r.address}\t${r.state}\t${r.attempts} attempt(s)\t${when}\t${replyText(r)}`.replace(/\t+$/, ''));
        }
      }
      return;
    }
    case 'show': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      const id = parseId(positionals[0], 'usage: yubin queue show ID [--json]');
      await withStore(loadContext(values), async (store) => {
        const message = await store.getQueueMessage(id);
        if (!message) throw new CliError(`no queued message ${id}`);
        const headers = await headersOf(store, message);
        if (values.json) return printJson({ ...asJson(message), headers });
        const m = asJson(message);
        console.log(`id:         ${m.id}`);
        console.log(`sender:     ${m.sender || '<>'}`);
        console.log(`size:       ${m.size} bytes`);
        console.log(`received:   ${m.receivedAt}`);
        console.log(`expires:    ${m.expiresAt}`);
        if (m.envid) console.log(`envid:      ${m.envid}`);
        if (m.ret) console.log(`ret:        ${m.ret}`);
        console.log('recipients:');
        for (const r of message.recipients) {
          console.log(`  ${r.address}: ${r.state}, ${r.attempts} attempt(s)${r.state === 'queued' ? `, next ${r.nextAttemptAt.toISOString()}` : ''}`);
          if (r.lastReply) console.log(`    last reply: ${replyText(r)}`);
        }
        console.log('', headers);
      });
      return;
    }
    case 'retry': {
      const { values, positionals } = parse(rest, { all: { type: 'boolean' } });
      if (values.all === (positionals.length > 0)) throw new UsageError('usage: yubin queue retry ID|--all');
      const id = values.all ? null : parseId(positionals[0], 'usage: yubin queue retry ID|--all');
      const count = await withStore(loadContext(values), async (store) => {
        if (id !== null && !(await store.getQueueMessage(id))) throw new CliError(`no queued message ${id}`);
        return store.retryQueue(id, new Date());
      });
      console.log(`${count} recipient(s) due now`);
      return;
    }
    case 'delete': {
      const { values, positionals } = parse(rest, {});
      const id = parseId(positionals[0], 'usage: yubin queue delete ID');
      const deleted = await withStore(loadContext(values), (store) => store.deleteQueueMessage(id));
      if (!deleted) throw new CliError(`no queued message ${id}`);
      console.log(`message ${id} deleted from the queue`);
      return;
    }
    default:
      throw new UsageError(sub === undefined ? 'missing subcommand; see yubin queue --help' : `unknown subcommand "queue ${sub}"; see yubin queue --help`);
  }
}
