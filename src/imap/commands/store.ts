import type { CommandSpec } from '../context.js';

export const storeCommands: CommandSpec[] = [];
