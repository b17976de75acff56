import type { CommandSpec } from '../context.js';

export const searchCommands: CommandSpec[] = [];
