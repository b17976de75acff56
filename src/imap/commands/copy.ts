import type { CommandSpec } from '../context.js';

export const copyCommands: CommandSpec[] = [];
