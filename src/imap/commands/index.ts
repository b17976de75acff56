// The command table: name → handler and the states that allow it (RFC 9051 §6).

import type { CommandSpec } from '../context.js';
import { generalCommands } from './general.js';
import { authCommands } from './auth.js';
import { mailboxCommands } from './mailboxes.js';
import { selectCommands } from './select.js';
import { fetchCommands } from './fetch.js';
import { storeCommands } from './store.js';
import { searchCommands } from './search.js';
import { copyCommands } from './copy.js';
import { appendCommands } from './append.js';
import { quotaCommands } from './quota.js';

export const COMMANDS = new Map<string, CommandSpec>();
for (const spec of [
  ...generalCommands,
  ...authCommands,
  ...mailboxCommands,
  ...selectCommands,
  ...fetchCommands,
  ...storeCommands,
  ...searchCommands,
  ...copyCommands,
  ...appendCommands,
  ...quotaCommands,
]) {
  COMMANDS.set(spec.name, spec);
}
