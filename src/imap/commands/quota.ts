import type { CommandSpec } from '../context.js';

export const quotaCommands: CommandSpec[] = [];
