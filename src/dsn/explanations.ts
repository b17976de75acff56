// Human-readable explanations for delivery status notifications, in English and Japanese.
//
// RFC 3463 enhanced status codes (class.subject.detail) are turned into two plain-language
// sentences for the person who sent the message: what went wrong (cause) and what to do about it
// (remedy). A reader who reads only these must know whether the message arrived, whose side the
// problem is on, and the next step, without knowing what "5.2.2" means. The remote server's reply
// is quoted where it carries the reason (policy refusals, the generic fallback).
//
// A pure module: no I/O, no clock. Dates are always written in UTC.

import type { SmtpReplyRecord } from '../store/types.js';
import type { DsnAction, DsnLocale } from './report.js';

export interface ExplainContext {
  action: DsnAction;
  recipient: string;
  reply: SmtpReplyRecord | null;
  lastAttemptAt: Date | null;
  willRetryUntil?: Date | null;
  messageSizeLimit?: number | null;
  fileTransferHint?: string | null;
  /** Delivery attempts made so far, when known. */
  attempts?: number | null;
}

export interface Explanation {
  cause: string;
  remedy: string;
}

/** The explanation family an enhanced status code falls into. */
export type StatusKind =
  | 'success'
  | 'mailbox-full'
  | 'mailbox-disabled'
  | 'unknown-user'
  | 'unknown-domain'
  | 'null-mx'
  | 'address-other'
  | 'too-large'
  | 'remote-system'
  | 'network'
  | 'protocol'
  | 'content'
  | 'auth-failure'
  | 'sender-null-mx'
  | 'policy'
  | 'generic';

const STATUS_RE = /^([245])\.(\d{1,3})\.(\d{1,3})$/;

/** Which explanation an RFC 3463 status code gets ("5.2.2" -> 'mailbox-full'). */
export function classifyStatus(status: string): StatusKind {
  const m = STATUS_RE.exec(status.trim());
  if (!m) return 'generic';
  const cls = m[1];
  const subject = Number(m[2]);
  const detail = Number(m[3]);
  if (cls === '2') return 'success';
  if (subject === 2 && detail === 2) return 'mailbox-full';
  if ((subject === 3 && detail === 4) || (subject === 2 && detail === 3)) return 'too-large';
  if (subject === 2 && detail === 1) return 'mailbox-disabled';
  if (subject === 1 && detail === 1) return 'unknown-user';
  if (subject === 1 && detail === 2) return 'unknown-domain';
  if (subject === 1 && detail === 10) return 'null-mx';
  if (subject === 1 && detail !== 0) return 'address-other';
  if (subject === 3 && detail !== 0) return 'remote-system';
  if (subject === 4) return 'network';
  if (subject === 5) return 'protocol';
  if (subject === 6) return 'content';
  if (subject === 7 && detail === 27) return 'sender-null-mx';
  if (subject === 7 && detail >= 20 && detail <= 26) return 'auth-failure';
  if (subject === 7) return 'policy';
  return 'generic';
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** A date for the human-readable text: "2026-12-01 18:05 UTC" / "2026年12月1日 18:05 (UTC)". */
export function formatHumanDate(date: Date, locale: DsnLocale): string {
  const y = date.getUTCFullYear();
  const mo = date.getUTCMonth() + 1;
  const d = date.getUTCDate();
  const hm = `${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())}`;
  if (locale === 'ja') return `${y}年${mo}月${d}日 ${hm} (UTC)`;
  return `${y}-${pad2(mo)}-${pad2(d)} ${hm} UTC`;
}

/** A byte count in MB, at most one decimal: "10", "2.5". */
export function formatMegabytes(bytes: number): string {
  // Limits set in MiB ("25M" = 26214400) read as 25; others (20000000, 10240000) in decimal MB.
  const mb = bytes % (1024 * 1024) === 0 ? bytes / (1024 * 1024) : bytes / 1_000_000;
  if (mb >= 100) return String(Math.round(mb));
  const rounded = Math.round(mb * 10) / 10;
  if (rounded === 0) return '0.1';
  return Number.isInteger(rounded) ? String(rounded) : rounded.toFixed(1);
}

/** The remote reply as one line, the way the server sent it: "550 5.1.1 <bob@x>: user unknown". */
export function replyOneLine(reply: SmtpReplyRecord): string {
  const text = reply.text.replace(/[\r\n\t]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  const parts = [String(reply.code)];
  if (reply.enhanced && !text.startsWith(reply.enhanced)) parts.push(reply.enhanced);
  if (text !== '') parts.push(text);
  return parts.join(' ');
}

/** An English quotation ending a sentence: "text". (no second full stop when the text has one). */
function quoteEn(text: string): string {
  return /[.!?]$/.test(text) ? `"${text}"` : `"${text}".`;
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address : address.slice(at + 1);
}

// ---------------------------------------------------------------------------------------------
// Texts

interface Texts {
  cause: string[];
  remedy: string[];
}

function english(kind: StatusKind, status: string, ctx: ExplainContext): Texts {
  const rcpt = `<${ctx.recipient}>`;
  const domain = domainOf(ctx.recipient);
  const failed = ctx.action === 'failed';
  const delayed = ctx.action === 'delayed';
  const until = ctx.willRetryUntil ? formatHumanDate(ctx.willRetryUntil, 'en') : null;
  const last = ctx.lastAttemptAt ? formatHumanDate(ctx.lastAttemptAt, 'en') : null;
  const quoted = ctx.reply ? `The recipient's server replied: ${quoteEn(replyOneLine(ctx.reply))}` : 'The recipient\'s server gave no further detail.';
  const keepTrying = until
    ? `Your message is not lost: Yubin keeps it and will keep trying to deliver it until ${until}.`
    : 'Your message is not lost: Yubin keeps it and will keep trying to deliver it.';
  const noResend = until
    ? `You do not need to send it again. If it still cannot be delivered by ${until}, you will receive another notice.`
    : 'You do not need to send it again. If it finally cannot be delivered, you will receive another notice.';
  const gaveUp =
    ctx.attempts && ctx.attempts > 1
      ? `Yubin tried ${ctx.attempts} times and has now given up.`
      : 'Yubin tried repeatedly and has now given up.';

  switch (kind) {
    case 'success': {
      if (ctx.action === 'relayed')
        return {
          cause: [`Your message was passed on to the mail system of ${rcpt}, which does not send delivery reports; you will probably not hear more about this recipient.`],
          remedy: ['Nothing needs to be done.'],
        };
      if (ctx.action === 'expanded')
        return {
          cause: [`Your message was delivered to ${rcpt}, an address that forwards mail to other addresses (a list or alias); you may receive separate reports about those.`],
          remedy: ['Nothing needs to be done.'],
        };
      return { cause: [`Your message was delivered successfully to ${rcpt}.`], remedy: ['Nothing needs to be done.'] };
    }
    case 'mailbox-full': {
      const lastPart = last ? ` Yubin last tried at ${last}.` : '';
      const cause = delayed
        ? [`The mailbox of ${rcpt} is full: it has reached its storage limit, so the recipient's server does not accept new messages at the moment.${lastPart}`, keepTrying]
        : [`The mailbox of ${rcpt} is full: it has reached its storage limit, so the recipient's server could not accept your message.${lastPart}`];
      if (failed && status.startsWith('4.')) cause.push(gaveUp);
      cause.push('This was not caused by your message or by anything you did.');
      const remedy = [
        'The recipient must make room: delete old messages (especially ones with large attachments) or ask their email administrator for more space.',
        'Since email cannot reach them right now, tell them another way, for example by phone.',
        delayed ? noResend : 'Once they have made room, send your message again.',
      ];
      return { cause, remedy };
    }
    case 'mailbox-disabled':
      return {
        cause: [`The mailbox of ${rcpt} is disabled and does not accept messages (for example, the account was closed or suspended).`],
        remedy: delayed
          ? [noResend, 'If the matter is urgent, ask the recipient another way (for example by phone) for an address that works.']
          : ['Ask the recipient another way (for example by phone) for an address that works, and send your message there.'],
      };
    case 'unknown-user':
      return {
        cause: [`The address ${rcpt} does not exist: the recipient's server (${domain}) has no mailbox by that name.`],
        remedy: [
          'Check the spelling of the address, especially the part before the @.',
          'If it looks right, ask the recipient for their current address another way (the person may have left or changed address), then send your message to the correct address.',
        ],
      };
    case 'unknown-domain':
      return {
        cause: [`The domain "${domain}" (the part after the @ in ${rcpt}) does not exist or has no mail server, so the message could not be delivered anywhere.`],
        remedy: [
          'Check the part after the @ for typing mistakes (for example ".co.jp" instead of ".com").',
          "If it is correct, ask the recipient for an address that works; their domain may have expired or be misconfigured.",
        ],
      };
    case 'null-mx':
      return {
        cause: [`The domain "${domain}" has declared that it does not accept email at all (a "null MX" record, RFC 7505), so nothing can be delivered to ${rcpt}.`],
        remedy: [
          'Check the part after the @: the address may be mistyped, or the organisation may use a different domain for email.',
          'Ask the recipient for an address that receives email.',
        ],
      };
    case 'address-other':
      return {
        cause: [`The recipient's server did not accept the address ${rcpt}: it is invalid, has moved, or cannot be used. ${quoted}`],
        remedy: ['Check the address for mistakes and ask the recipient another way for the right one; the reply above may name a new address.'],
      };
    case 'too-large': {
      const limit = ctx.messageSizeLimit && ctx.messageSizeLimit > 0 ? ` (its limit is about ${formatMegabytes(ctx.messageSizeLimit)} MB)` : '';
      const hint = ctx.fileTransferHint?.trim()
        ? ctx.fileTransferHint.trim()
        : 'Upload them to a file-transfer or file-sharing service and put the download link in your message.';
      return {
        cause: [`Your message is larger than the recipient's server accepts${limit}, so it was not delivered to ${rcpt}.`],
        remedy: [
          `Send large files as a link instead of as attachments. ${hint}`,
          'Attachments grow by about a third when sent by email, so files somewhat smaller than the limit can still be too large.',
          'Then send your message again without the large attachments.',
        ],
      };
    }
    case 'remote-system':
      return {
        cause: [
          `The mail system for ${rcpt} has a problem and is not accepting messages (for example, it is out of storage or misconfigured). ${quoted}`,
          ...(delayed ? [keepTrying] : failed && status.startsWith('4.') ? [gaveUp] : []),
        ],
        remedy: delayed
          ? [noResend]
          : ['Nothing is wrong with your message. Try again later; if it keeps failing, tell the recipient another way (for example by phone) so their administrator can fix their mail server.'],
      };
    case 'network': {
      const detail = Number(STATUS_RE.exec(status)?.[3] ?? '0');
      const what: Record<number, string> = {
        1: `The mail server for ${rcpt} did not answer.`,
        2: `The connection to the mail server for ${rcpt} was broken off before the message was transferred.`,
        3: `The domain "${domain}" could not be looked up in the DNS (the lookup failed or timed out), so its mail server could not be found.`,
        4: `No route to the mail server for ${rcpt} could be found.`,
        5: `The mail system for ${rcpt} is overloaded.`,
        6: 'The message was caught in a mail routing loop between servers.',
        7: `The message could not be delivered to ${rcpt} within the time Yubin keeps trying.`,
      };
      const cause = [what[detail] ?? `A network problem prevented Yubin from reaching the mail server for ${rcpt}.`];
      if (detail === 7 && ctx.reply) cause.push(`The last reply was: ${quoteEn(replyOneLine(ctx.reply))}`);
      if (delayed) cause.push(until ? `Yubin will keep trying until ${until}.` : 'Yubin will keep trying.');
      else if (failed) cause.push(gaveUp);
      cause.push('This is not a problem with your message.');
      const remedy = delayed
        ? [noResend, 'If the matter is urgent, contact the recipient another way, for example by phone.']
        : [
            'There is nothing to fix in your message. Try sending it again later.',
            "If it keeps failing, tell the recipient another way (for example by phone) that their mail server cannot be reached; their administrator needs to look at it.",
          ];
      return { cause, remedy };
    }
    case 'protocol':
      return {
        cause: [`Yubin and the mail server for ${rcpt} could not complete the transfer: the server refused a step of the mail protocol (SMTP), a compatibility problem between the two servers. ${quoted}`, ...(delayed ? [keepTrying] : [])],
        remedy: delayed
          ? [noResend]
          : ['This is usually not caused by your message. Try again later; if it keeps failing, forward this report to your email administrator so they can contact the recipient\'s administrator.'],
      };
    case 'content':
      return {
        cause: [`The mail server for ${rcpt} could not accept the content or format of your message (for example, an attachment type, character set or encoding it does not support). ${quoted}`],
        remedy: [
          'Send the message again in a simpler form: as plain text, with unusual attachments packed into a ZIP file, or with files shared as a download link instead.',
        ],
      };
    case 'auth-failure':
      return {
        cause: [`The mail server for ${rcpt} refused your message because it could not verify that the message really came from your domain: a sender authentication check (SPF, DKIM or DMARC) failed. ${quoted}`],
        remedy: [
          "Forward this report to your email administrator. They should check that your domain's SPF record lists every server that sends your mail, that your messages are DKIM-signed, and that your DMARC policy matches.",
          'Do not send the message again unchanged until this is fixed; it would be refused again.',
        ],
      };
    case 'sender-null-mx':
      return {
        cause: [`The mail server for ${rcpt} refused your message because the domain of your own address declares that it receives no email (a "null MX" record), so nobody could reply to you. ${quoted}`],
        remedy: ["Ask your email administrator to correct your domain's MX records in the DNS, or send from an address that can receive replies."],
      };
    case 'policy':
      return {
        cause: [`The mail server for ${rcpt} refused your message for policy reasons (for example, it was judged to be spam, or the sender is not allowed to send there). ${quoted}`],
        remedy: [
          'Do not send the message again unchanged; it would be refused again. The server\'s reply shows the reason.',
          "If it mentions spam, block lists or authentication (SPF, DKIM, DMARC), forward this report to your email administrator, who should check your domain's SPF, DKIM and DMARC records and the reputation of your sending server.",
          'You can also contact the recipient another way and ask their administrator to accept your messages.',
        ],
      };
    case 'generic':
    default: {
      if (delayed)
        return {
          cause: [`Delivery to ${rcpt} has not succeeded yet (status ${status}). ${quoted}`, keepTrying],
          remedy: [noResend],
        };
      return {
        cause: [`Your message could not be delivered to ${rcpt} (status ${status}). ${quoted}`],
        remedy: [
          'The server\'s reply above gives the reason. If it concerns the address, check it with the recipient; otherwise try again later.',
          'If the problem continues, forward this report to your email administrator.',
        ],
      };
    }
  }
}

function japanese(kind: StatusKind, status: string, ctx: ExplainContext): Texts {
  const rcpt = `<${ctx.recipient}>`;
  const domain = domainOf(ctx.recipient);
  const failed = ctx.action === 'failed';
  const delayed = ctx.action === 'delayed';
  const until = ctx.willRetryUntil ? formatHumanDate(ctx.willRetryUntil, 'ja') : null;
  const last = ctx.lastAttemptAt ? formatHumanDate(ctx.lastAttemptAt, 'ja') : null;
  const quoted = ctx.reply ? `受信側サーバーの応答は「${replyOneLine(ctx.reply)}」でした。` : '受信側サーバーからの詳しい説明はありませんでした。';
  const keepTrying = until
    ? `メッセージは失われていません。当サーバーで保管し、${until} まで配信を再試行します。`
    : 'メッセージは失われていません。当サーバーで保管し、引き続き配信を再試行します。';
  const noResend = until
    ? `再送していただく必要はありません。${until} までに配信できなかった場合は、改めてお知らせします。`
    : '再送していただく必要はありません。最終的に配信できなかった場合は、改めてお知らせします。';
  const gaveUp =
    ctx.attempts && ctx.attempts > 1
      ? `${ctx.attempts} 回配信を試みましたが、配信を断念しました。`
      : '繰り返し配信を試みましたが、配信を断念しました。';

  switch (kind) {
    case 'success': {
      if (ctx.action === 'relayed')
        return {
          cause: [`メッセージを ${rcpt} のメールシステムに引き渡しました。このシステムは配信通知に対応していないため、この宛先についてのこれ以上のお知らせは届かない可能性があります。`],
          remedy: ['必要な操作はありません。'],
        };
      if (ctx.action === 'expanded')
        return {
          cause: [`メッセージを ${rcpt} に配信しました。このアドレスは他のアドレスへ転送するアドレス（メーリングリストまたはエイリアス）のため、転送先について別途お知らせが届く場合があります。`],
          remedy: ['必要な操作はありません。'],
        };
      return { cause: [`メッセージは ${rcpt} に正常に配信されました。`], remedy: ['必要な操作はありません。'] };
    }
    case 'mailbox-full': {
      const lastPart = last ? `最後に配信を試みたのは ${last} です。` : '';
      const cause = delayed
        ? [`宛先 ${rcpt} のメールボックスが容量の上限に達しているため、現在メッセージを配信できません。${lastPart}`, keepTrying]
        : [`宛先 ${rcpt} のメールボックスが容量の上限に達しているため、メッセージを配信できませんでした。${lastPart}`];
      if (failed && status.startsWith('4.')) cause.push(gaveUp);
      cause.push('送信されたメッセージや操作に問題があったわけではありません。');
      const remedy = [
        '受信者の方がメールボックスの空き容量を確保する必要があります（古いメール、特に大きな添付ファイル付きのメールを削除するか、メール管理者に容量の追加を依頼してください）。',
        '現在、受信者の方にはメールが届かない状態ですので、お電話など別の方法でお知らせください。',
        delayed ? noResend : '空き容量が確保された後、メッセージを再送してください。',
      ];
      return { cause, remedy };
    }
    case 'mailbox-disabled':
      return {
        cause: [`宛先 ${rcpt} のメールボックスは無効になっており、メッセージを受け付けていません（アカウントの廃止や停止などが考えられます）。`],
        remedy: delayed
          ? [noResend, 'お急ぎの場合は、お電話など別の方法で受信者の方に使用できるアドレスをお尋ねください。']
          : ['お電話など別の方法で受信者の方に使用できるアドレスをお尋ねのうえ、そのアドレスに送信してください。'],
      };
    case 'unknown-user':
      return {
        cause: [`宛先のメールアドレス ${rcpt} は存在しません。受信側のサーバー (${domain}) に、この名前のメールボックスがありません。`],
        remedy: [
          'メールアドレスのつづり、特に @ より前の部分に誤りがないかご確認ください。',
          '誤りがない場合は、退職やアドレス変更の可能性がありますので、お電話など別の方法で受信者の方に現在のアドレスを確認のうえ、正しいアドレスに再送してください。',
        ],
      };
    case 'unknown-domain':
      return {
        cause: [`宛先 ${rcpt} のドメイン「${domain}」（@ より後ろの部分）が存在しないか、メールサーバーが設定されていないため、メッセージを配信できませんでした。`],
        remedy: [
          '@ より後ろの部分に入力ミスがないかご確認ください（例: 「.co.jp」と「.com」の違い）。',
          '誤りがない場合は、ドメインの期限切れや設定の誤りが考えられますので、受信者の方に使用できるアドレスをお尋ねください。',
        ],
      };
    case 'null-mx':
      return {
        cause: [`宛先のドメイン「${domain}」は、メールを一切受け付けないことを DNS で宣言しています（Null MX、RFC 7505）。そのため、${rcpt} 宛てのメッセージは配信できません。`],
        remedy: [
          '@ より後ろの部分をご確認ください。アドレスの入力ミスか、先方がメール用に別のドメインを使用している可能性があります。',
          '受信者の方に、メールを受け取れるアドレスをお尋ねください。',
        ],
      };
    case 'address-other':
      return {
        cause: [`受信側のサーバーが宛先 ${rcpt} を受け付けませんでした（アドレスが無効、移転済み、または使用できない状態です）。${quoted}`],
        remedy: ['アドレスに誤りがないかご確認のうえ、別の方法で受信者の方に正しいアドレスをお尋ねください。上記の応答に新しいアドレスが記載されている場合もあります。'],
      };
    case 'too-large': {
      const limit = ctx.messageSizeLimit && ctx.messageSizeLimit > 0 ? `（上限は約 ${formatMegabytes(ctx.messageSizeLimit)} MB です）` : '';
      const hint = ctx.fileTransferHint?.trim()
        ? ctx.fileTransferHint.trim()
        : 'ファイル転送サービスやファイル共有サービスにアップロードし、ダウンロード用のリンクをメッセージに記載してください。';
      return {
        cause: [`メッセージのサイズが、受信側のサーバーが受け付けられる上限を超えているため、${rcpt} に配信できませんでした${limit}。`],
        remedy: [
          `大きなファイルは添付せず、リンクで送ってください。${hint}`,
          '添付ファイルはメールで送ると約 3 分の 1 大きくなるため、上限より少し小さいファイルでも超えてしまうことがあります。',
          'そのうえで、大きな添付ファイルを外してメッセージを再送してください。',
        ],
      };
    }
    case 'remote-system':
      return {
        cause: [
          `${rcpt} のメールシステムに問題があり、メッセージを受け付けていません（容量不足や設定の誤りなどが考えられます）。${quoted}`,
          ...(delayed ? [keepTrying] : failed && status.startsWith('4.') ? [gaveUp] : []),
        ],
        remedy: delayed
          ? [noResend]
          : ['送信されたメッセージに問題はありません。時間をおいて再送してください。それでも届かない場合は、お電話など別の方法で受信者の方にお知らせいただき、先方の管理者にメールサーバーを確認してもらってください。'],
      };
    case 'network': {
      const detail = Number(STATUS_RE.exec(status)?.[3] ?? '0');
      const what: Record<number, string> = {
        1: `${rcpt} のメールサーバーから応答がありませんでした。`,
        2: `${rcpt} のメールサーバーとの接続が、転送の途中で切断されました。`,
        3: `宛先のドメイン「${domain}」を DNS で検索できなかった（検索の失敗またはタイムアウト）ため、メールサーバーが見つかりませんでした。`,
        4: `${rcpt} のメールサーバーへの経路が見つかりませんでした。`,
        5: `${rcpt} のメールシステムが混雑しています。`,
        6: 'メッセージがサーバー間で配送ループに陥りました。',
        7: `再試行期間内に ${rcpt} へメッセージを配信できませんでした。`,
      };
      const cause = [what[detail] ?? `ネットワークの問題により、${rcpt} のメールサーバーに接続できませんでした。`];
      if (detail === 7 && ctx.reply) cause.push(`最後の応答は「${replyOneLine(ctx.reply)}」でした。`);
      if (delayed) cause.push(until ? `${until} まで配信を再試行します。` : '引き続き配信を再試行します。');
      else if (failed) cause.push(gaveUp);
      cause.push('メッセージの内容に問題があるわけではありません。');
      const remedy = delayed
        ? [noResend, 'お急ぎの場合は、お電話など別の方法で受信者の方にご連絡ください。']
        : [
            'メッセージを修正する必要はありません。時間をおいて再送してください。',
            'それでも届かない場合は、お電話など別の方法で、先方のメールサーバーに接続できないことを受信者の方にお伝えください。先方の管理者による確認が必要です。',
          ];
      return { cause, remedy };
    }
    case 'protocol':
      return {
        cause: [`当サーバーと ${rcpt} のメールサーバーとの間で、メールの転送手順 (SMTP) を完了できませんでした。サーバー間の互換性の問題です。${quoted}`, ...(delayed ? [keepTrying] : [])],
        remedy: delayed
          ? [noResend]
          : ['通常、送信されたメッセージが原因ではありません。時間をおいて再送してください。それでも届かない場合は、この通知をメール管理者に転送し、先方の管理者に問い合わせてもらってください。'],
      };
    case 'content':
      return {
        cause: [`${rcpt} のメールサーバーが、メッセージの内容または形式（添付ファイルの種類、文字コード、エンコード方式など）を受け付けられませんでした。${quoted}`],
        remedy: ['テキスト形式にする、特殊な添付ファイルを ZIP ファイルにまとめる、ファイルをダウンロード用のリンクで共有するなど、より単純な形式でメッセージを再送してください。'],
      };
    case 'auth-failure':
      return {
        cause: [`送信ドメイン認証（SPF・DKIM・DMARC）に失敗したため、${rcpt} のメールサーバーがメッセージを拒否しました。メッセージが本当にお使いのドメインから送られたものか確認できなかったためです。${quoted}`],
        remedy: [
          'この通知をメール管理者に転送してください。管理者は、ドメインの SPF レコードに送信サーバーがすべて含まれているか、メッセージに DKIM 署名が付いているか、DMARC ポリシーが適切かを確認する必要があります。',
          '修正されるまでは、同じ内容のまま再送しないでください。再び拒否されます。',
        ],
      };
    case 'sender-null-mx':
      return {
        cause: [`送信者のアドレスのドメインが「メールを受け付けない」と DNS で宣言している（Null MX）ため、${rcpt} のメールサーバーがメッセージを拒否しました。返信できないアドレスからの送信と判断されたためです。${quoted}`],
        remedy: ['メール管理者に DNS の MX レコードの修正を依頼するか、返信を受け取れるアドレスから送信してください。'],
      };
    case 'policy':
      return {
        cause: [`${rcpt} のメールサーバーが、ポリシー上の理由（迷惑メールと判定された、送信元が許可されていないなど）により、メッセージの受け取りを拒否しました。${quoted}`],
        remedy: [
          '同じ内容のまま再送しないでください。再び拒否されます。拒否の理由はサーバーの応答をご確認ください。',
          '迷惑メール、ブロックリスト、送信ドメイン認証（SPF・DKIM・DMARC）に関する内容であれば、この通知をメール管理者に転送し、ドメインの SPF・DKIM・DMARC の設定と送信サーバーの評判を確認してもらってください。',
          '別の方法で受信者の方に連絡し、先方の管理者に受信を許可してもらう方法もあります。',
        ],
      };
    case 'generic':
    default: {
      if (delayed)
        return {
          cause: [`${rcpt} への配信はまだ完了していません（ステータス ${status}）。${quoted}`, keepTrying],
          remedy: [noResend],
        };
      return {
        cause: [`${rcpt} にメッセージを配信できませんでした（ステータス ${status}）。${quoted}`],
        remedy: [
          '理由は上記のサーバーの応答をご確認ください。アドレスに関する内容であれば受信者の方に確認し、そうでなければ時間をおいて再送してください。',
          '問題が続く場合は、この通知をメール管理者に転送してください。',
        ],
      };
    }
  }
}

/** What went wrong and what to do, for one recipient, in plain words. */
export function explainStatus(status: string, locale: DsnLocale, context: ExplainContext): Explanation {
  const normalized = status.trim();
  const kind = classifyStatus(normalized);
  const texts = locale === 'ja' ? japanese(kind, normalized, context) : english(kind, normalized, context);
  const sep = locale === 'ja' ? '' : ' ';
  return { cause: texts.cause.join(sep), remedy: texts.remedy.join(sep) };
}

// ---------------------------------------------------------------------------------------------
// Subjects and short phrases

const SUBJECT_PREFIX: Record<DsnLocale, Record<DsnAction, string>> = {
  en: {
    failed: 'Delivery failed',
    delayed: 'Delivery delayed',
    delivered: 'Delivered',
    relayed: 'Relayed',
    expanded: 'Delivered (forwarded)',
  },
  ja: {
    failed: '配信できませんでした',
    delayed: '配信が遅れています',
    delivered: '配信しました',
    relayed: '中継しました',
    expanded: '配信しました（転送）',
  },
};

/** The most important action among the recipients: failed > delayed > delivered > relayed > expanded. */
export function primaryAction(actions: Iterable<DsnAction>): DsnAction {
  const order: DsnAction[] = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'];
  let best = order.length - 1;
  let any = false;
  for (const a of actions) {
    any = true;
    best = Math.min(best, order.indexOf(a));
  }
  return any ? (order[best] ?? 'failed') : 'failed';
}

/** The report's Subject (not yet MIME-encoded): "Delivery failed: <original subject>". */
export function buildSubject(action: DsnAction, locale: DsnLocale, originalSubject: string | null): string {
  const subject = originalSubject && originalSubject.trim() !== '' ? originalSubject.trim() : locale === 'ja' ? '(件名なし)' : '(no subject)';
  return `${SUBJECT_PREFIX[locale][action]}: ${subject}`;
}

/** One line saying what happened to a recipient, for the human-readable part. */
export function actionPhrase(action: DsnAction, status: string, locale: DsnLocale): string {
  const permanent = status.startsWith('5.');
  if (locale === 'ja') {
    switch (action) {
      case 'failed':
        return permanent ? '配信できませんでした（恒久的なエラー）' : '配信できませんでした（再試行期間が終了しました）';
      case 'delayed':
        return 'まだ配信できていません（再試行中です）';
      case 'delivered':
        return '配信しました';
      case 'relayed':
        return '中継しました（これ以降の配信通知はありません）';
      case 'expanded':
        return '配信しました（転送先へ展開されました）';
    }
  }
  switch (action) {
    case 'failed':
      return permanent ? 'could not be delivered (permanent error)' : 'could not be delivered (Yubin stopped trying)';
    case 'delayed':
      return 'not delivered yet (Yubin is still trying)';
    case 'delivered':
      return 'delivered';
    case 'relayed':
      return 'relayed (no further reports will come)';
    case 'expanded':
      return 'delivered (expanded to other addresses)';
  }
}
