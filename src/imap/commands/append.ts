import type { CommandSpec } from '../context.js';

export const appendCommands: CommandSpec[] = [];
