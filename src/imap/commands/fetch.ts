import type { CommandSpec } from '../context.js';

export const fetchCommands: CommandSpec[] = [];
