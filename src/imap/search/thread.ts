// THREAD (RFC 5256 §2.2 / §3): ORDEREDSUBJECT and REFERENCES, and the thread-list syntax of
// the THREAD response. Pure, and without recursion: threads of any depth are walked with
// explicit stacks.

import { asciiCaseKey, extractBaseSubject } from './sortkeys.js';

export interface ThreadMessage {
  /** The number reported: a sequence number, or a UID for UID THREAD. */
  id: number;
  /** Position in the mailbox (ties in sent date are broken by it). */
  order: number;
  /** Sent date in ms (the Date: header, or INTERNALDATE when it has none, RFC 5256 §2.2). */
  sent: number;
  /** The decoded Subject ("" when none). */
  subject: string;
  /** Message-ID without angle brackets, or null. */
  messageId: string | null;
  /** References (or the first In-Reply-To id when there are none), oldest first, without brackets. */
  references: string[];
}

export interface ThreadNode {
  message: ThreadMessage | null; // null: a dummy (a message we only know from references)
  parent: ThreadNode | null;
  children: ThreadNode[];
}

function node(message: ThreadMessage | null): ThreadNode {
  return { message, parent: null, children: [] };
}

function compareMessages(a: ThreadMessage, b: ThreadMessage): number {
  return a.sent - b.sent || a.order - b.order;
}

/** The message a node sorts by: itself, or (for a dummy) its first child's, recursively. */
function sortMessage(n: ThreadNode): ThreadMessage | null {
  let cur: ThreadNode | undefined = n;
  while (cur && !cur.message) cur = cur.children[0];
  return cur?.message ?? null;
}

function compareNodes(a: ThreadNode, b: ThreadNode): number {
  const ma = sortMessage(a);
  const mb = sortMessage(b);
  if (!ma || !mb) return (ma ? 0 : 1) - (mb ? 0 : 1);
  return compareMessages(ma, mb);
}

/** Every node under `roots`, parents before children. */
function preorder(roots: ThreadNode[]): ThreadNode[] {
  const out: ThreadNode[] = [];
  const stack = [...roots].reverse();
  while (stack.length > 0) {
    const n = stack.pop()!;
    out.push(n);
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!);
  }
  return out;
}

/** Sorts every set of siblings by sent date, deepest first (RFC 5256 §2.2 step 6). */
function sortSiblings(roots: ThreadNode[]): void {
  const nodes = preorder(roots);
  for (let i = nodes.length - 1; i >= 0; i--) nodes[i]!.children.sort(compareNodes);
  roots.sort(compareNodes);
}

function setParent(child: ThreadNode, parent: ThreadNode | null): void {
  if (child.parent) {
    const siblings = child.parent.children;
    const index = siblings.indexOf(child);
    if (index >= 0) siblings.splice(index, 1);
  }
  child.parent = parent;
  if (parent) parent.children.push(child);
}

/** Whether `a` is `b` or one of its ancestors (linking b → a would make a loop). */
function isAncestorOrSelf(a: ThreadNode, b: ThreadNode): boolean {
  if (a === b) return true;
  if (a.children.length === 0) return false; // a leaf is nobody's ancestor (the common case: no walk)
  for (let cur: ThreadNode | null = b; cur; cur = cur.parent) if (cur === a) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------

/** THREAD=ORDEREDSUBJECT (RFC 5256 §2.2): threads of the same base subject, by sent date. */
export function threadOrderedSubject(messages: ThreadMessage[]): ThreadNode[] {
  const keyed = messages.map((m) => ({ m, key: asciiCaseKey(extractBaseSubject(m.subject).base) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : compareMessages(a.m, b.m)));
  const roots: ThreadNode[] = [];
  let current: { key: string; root: ThreadNode } | null = null;
  for (const { m, key } of keyed) {
    if (current && current.key === key) {
      setParent(node(m), current.root);
    } else {
      current = { key, root: node(m) };
      roots.push(current.root);
    }
  }
  roots.sort(compareNodes);
  return roots;
}

/** THREAD=REFERENCES (RFC 5256 §2.2, after Jamie Zawinski's algorithm). */
export function threadReferences(messages: ThreadMessage[]): ThreadNode[] {
  // (1) Link messages by Message-ID, References and In-Reply-To.
  const table = new Map<string, ThreadNode>();
  const all: ThreadNode[] = [];
  const ordered = [...messages].sort((a, b) => a.order - b.order);
  let unique = 0;
  for (const m of ordered) {
    // (1A) The message's container; a duplicate Message-ID gets a unique one.
    let container: ThreadNode | undefined = m.messageId !== null ? table.get(m.messageId) : undefined;
    if (container && container.message === null) {
      container.message = m;
    } else {
      container = node(m);
      all.push(container);
      const id = m.messageId !== null && !table.has(m.messageId) ? m.messageId : `\u0000unique-${unique++}`;
      table.set(id, container);
    }
    // (1B) Chain the references, each the parent of the next, without breaking existing links.
    let previous: ThreadNode | null = null;
    for (const ref of m.references) {
      let refNode = table.get(ref);
      if (!refNode) {
        refNode = node(null);
        all.push(refNode);
        table.set(ref, refNode);
      }
      if (previous && !refNode.parent && !isAncestorOrSelf(refNode, previous)) setParent(refNode, previous);
      previous = refNode;
    }
    // (1C) The last reference is the message's parent (replacing any parent it had).
    if (previous && isAncestorOrSelf(container, previous)) previous = null;
    if (container.parent !== previous) setParent(container, previous);
  }
  // (2) The root set.
  let roots = all.filter((n) => n.parent === null);

  // (4) Prune dummies: childless ones go, others hand their children up (at the root only one).
  const pruned: ThreadNode[] = [];
  const stack: Array<{ n: ThreadNode; root: boolean }> = roots.map((n) => ({ n, root: true })).reverse();
  // Process parents after their children: collect a post-order first.
  const post: Array<{ n: ThreadNode; root: boolean }> = [];
  while (stack.length > 0) {
    const item = stack.pop()!;
    post.push(item);
    for (const child of item.n.children) stack.push({ n: child, root: false });
  }
  for (let i = post.length - 1; i >= 0; i--) {
    const { n, root } = post[i]!;
    if (n.message) continue;
    if (n.children.length === 0) {
      if (n.parent) setParent(n, null);
      n.parent = null;
      continue;
    }
    if (!root) {
      const parent = n.parent!;
      for (const child of [...n.children]) setParent(child, parent);
      setParent(n, null);
    } else if (n.children.length === 1) {
      const only = n.children[0]!;
      setParent(only, null);
      pruned.push(only);
    }
  }
  roots = roots.filter((n) => n.message !== null || n.children.length > 0).concat(pruned);
  sortSiblings(roots);

  // (5) Gather root threads with the same base subject.
  const subjectOf = (n: ThreadNode): { base: string; reply: boolean } | null => {
    const m = n.message ?? n.children[0]?.message ?? null;
    if (!m) return null;
    const { base, replyOrForward } = extractBaseSubject(m.subject);
    return base === '' ? null : { base: asciiCaseKey(base), reply: n.message ? replyOrForward : false };
  };
  const subjects = new Map<string, ThreadNode>();
  const isReply = new Map<ThreadNode, boolean>();
  for (const n of roots) {
    const s = subjectOf(n);
    if (!s) continue;
    isReply.set(n, s.reply);
    const known = subjects.get(s.base);
    if (!known) subjects.set(s.base, n);
    else if (known.message && (!n.message || (isReply.get(known) && !s.reply))) subjects.set(s.base, n);
  }
  const removed = new Set<ThreadNode>();
  const replaced = new Map<ThreadNode, ThreadNode>();
  for (const n of roots) {
    const s = subjectOf(n);
    if (!s) continue;
    const known = subjects.get(s.base);
    if (!known || known === n) continue;
    if (!known.message && !n.message) {
      for (const child of [...n.children]) setParent(child, known);
      removed.add(n);
    } else if (!known.message && n.message) {
      setParent(n, known);
      removed.add(n);
    } else if (isReply.get(n) && !isReply.get(known)) {
      setParent(n, known);
      removed.add(n);
    } else {
      const dummy = node(null);
      // The dummy takes the table entry's place in the root set.
      replaced.set(known, dummy);
      setParent(known, dummy);
      setParent(n, dummy);
      removed.add(n);
      subjects.set(s.base, dummy);
    }
  }
  const finalRoots: ThreadNode[] = [];
  for (const n of roots) {
    if (removed.has(n)) continue;
    finalRoots.push(replaced.get(n) ?? n);
  }
  // (6) Sort siblings by sent date.
  sortSiblings(finalRoots);
  return finalRoots;
}

/**
 * The THREAD response's thread lists (RFC 5256 §4): "(1 2 (3)(4 5))" per root. A node with one
 * child continues the list; one with several opens a nested list per child; a dummy adds nothing.
 */
export function formatThreads(roots: ThreadNode[]): string {
  const out: string[] = [];
  const stack: Array<string | ThreadNode> = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push(')', roots[i]!, '(');
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item === 'string') {
      out.push(item);
      continue;
    }
    const ids: number[] = [];
    let cur = item;
    for (;;) {
      if (cur.message) ids.push(cur.message.id);
      if (cur.children.length !== 1) break;
      cur = cur.children[0]!;
    }
    out.push(ids.join(' '));
    if (cur.children.length > 1) {
      if (ids.length > 0) out.push(' ');
      for (let i = cur.children.length - 1; i >= 0; i--) stack.push(')', cur.children[i]!, '(');
    }
  }
  return out.join('');
}
