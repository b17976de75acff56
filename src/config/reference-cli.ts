// npm run docs:config — rewrites the configuration reference between the markers in README.md.

import fs from 'node:fs';
import { renderReference } from './reference.js';

export const BEGIN = '<!-- config-reference:begin -->';
export const END = '<!-- config-reference:end -->';

const readme = fs.readFileSync('README.md', 'utf8');
const start = readme.indexOf(BEGIN);
const end = readme.indexOf(END);
if (start < 0 || end < start) {
  console.error(`README.md has no ${BEGIN} ... ${END} markers`);
  process.exit(1);
}
fs.writeFileSync('README.md', readme.slice(0, start + BEGIN.length) + '\n' + renderReference() + readme.slice(end));
console.log('README.md configuration reference updated');
