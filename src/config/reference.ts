// Generates the configuration reference (markdown) from the schema, so the docs cannot drift.

import { z } from 'zod';
import { configSchema } from './schema.js';

export interface SettingDoc {
  key: string;
  defaultValue: unknown;
  description: string;
}

type ZodDef = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; defaultValue?: unknown; entries?: Record<string, string> };
const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: ZodDef } })._zod.def;

export function listSettings(schema: z.ZodType = configSchema, prefix = ''): SettingDoc[] {
  let def = defOf(schema);
  const leafDefault = def.type === 'default' || def.type === 'prefault' ? def.defaultValue : undefined;
  if (def.type === 'prefault' && def.innerType && defOf(def.innerType).type === 'object') def = defOf(def.innerType);
  if (def.type === 'object' && def.shape) {
    return Object.entries(def.shape).flatMap(([key, child]) => listSettings(child, prefix ? `${prefix}.${key}` : key));
  }
  return [{ key: prefix, defaultValue: leafDefault, description: schema.description ?? '' }];
}

export function renderReference(): string {
  const lines = ['| setting | default | meaning |', '|---|---|---|'];
  for (const s of listSettings()) {
    const shown = s.defaultValue === '' ? '""' : JSON.stringify(s.defaultValue);
    lines.push(`| \`${s.key}\` | \`${shown}\` | ${s.description.replace(/\|/g, '\\|')} |`);
  }
  return lines.join('\n') + '\n';
}
