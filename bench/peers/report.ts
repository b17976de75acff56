// Results: every round's raw figures, medians, Yubin's advantage per figure ("Yubin is N× better":
// above 1 Yubin wins, below 1 the peer does, whichever direction the figure is better in), the
// targets, written as JSON, markdown and a hand-written SVG bar chart.

import fs from 'node:fs';
import path from 'node:path';
import { median } from './common.js';

export type Side = 'yubin' | 'peer';

export interface Target {
  /** What the target says, e.g. "≥ 1.5× Postfix+Dovecot". */
  text: string;
  /** A target on the advantage (drawn on the chart), or on Yubin's own median. */
  kind: 'advantage' | 'yubin-below';
  value: number;
  /** An extra condition (e.g. zero errors); false makes the target not met. */
  extra?: () => { ok: boolean; why: string };
}

export interface Figure {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  rounds: Record<Side, Array<number | null>>;
  errors: Record<Side, string[]>;
  target?: Target;
}

export interface FigureSummary {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  rounds: Record<Side, Array<number | null>>;
  median: Record<Side, number | null>;
  /** Yubin/peer for higher-is-better, peer/Yubin for lower-is-better: "Yubin is N× better". */
  advantage: number | null;
  /** Yubin's median / the peer's median, as measured (whatever the direction). */
  ratio: number | null;
  target: { text: string; met: boolean | null; why?: string } | null;
  errors: Record<Side, string[]>;
}

export interface Results {
  date: string;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  command: string;
  machine: { cores: number; cpu: string; memoryGiB: number; os: string; loadAverage: number[] };
  versions: { node: string; yubin: string; yubinCommit: string; postfix: string; dovecot: string };
  settings: Record<string, unknown>;
  figures: FigureSummary[];
  /** Every round's full results per workload and side. */
  details: Record<string, unknown>;
  /** Readable highlights of the details, for the markdown. */
  detailLines: string[];
  notes: string[];
}

export function summarize(f: Figure): FigureSummary {
  const med = { yubin: median(f.rounds.yubin.filter((v): v is number => v !== null)), peer: median(f.rounds.peer.filter((v): v is number => v !== null)) };
  const ratio = med.yubin !== null && med.peer !== null && med.peer !== 0 ? med.yubin / med.peer : null;
  let advantage: number | null = null;
  if (med.yubin !== null && med.peer !== null) {
    advantage = f.better === 'higher' ? (med.peer > 0 ? med.yubin / med.peer : null) : med.yubin > 0 ? med.peer / med.yubin : null;
  }
  let target: FigureSummary['target'] = null;
  if (f.target) {
    let met: boolean | null = null;
    let why: string | undefined;
    if (f.target.kind === 'advantage') met = advantage === null ? null : advantage >= f.target.value;
    else met = med.yubin === null ? null : med.yubin < f.target.value;
    if (f.target.extra) {
      const extra = f.target.extra();
      if (!extra.ok) {
        met = false;
        why = extra.why;
      }
    }
    target = { text: f.target.text, met, why };
  }
  return { id: f.id, label: f.label, unit: f.unit, better: f.better, rounds: f.rounds, median: med, advantage, ratio, target, errors: f.errors };
}

export function fmt(v: number | null | undefined, unit = ''): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  const text = v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return unit ? `${text} ${unit}` : text;
}

/** A ratio with enough digits to tell small ones apart (0.0011, 0.23, 1.54, 58.5). */
export function ratioText(a: number): string {
  if (a >= 100) return a.toFixed(0);
  if (a >= 10) return a.toFixed(1);
  if (a >= 0.1) return a.toFixed(2);
  return a.toPrecision(2);
}

export function advantageText(a: number | null): string {
  if (a === null || !Number.isFinite(a)) return 'n/a';
  if (a >= 1) return `Yubin ${ratioText(a)}× better`;
  return `Yubin ${ratioText(a)}× (peer ${ratioText(1 / a)}× better)`;
}

function metText(t: FigureSummary['target']): string {
  if (!t) return '—';
  const verdict = t.met === null ? 'n/a' : t.met ? '**met**' : '**not met**';
  return `${t.text}: ${verdict}${t.why ? ` (${t.why})` : ''}`;
}

export function markdownTable(r: Results): string {
  const lines = [
    '| figure | better | Yubin (median) | Postfix+Dovecot (median) | Yubin vs peer | target |',
    '|---|---|---|---|---|---|',
  ];
  for (const f of r.figures) {
    lines.push(
      `| ${f.label} | ${f.better} | ${fmt(f.median.yubin, f.unit)} | ${fmt(f.median.peer, f.unit)} | ${advantageText(f.advantage)} | ${metText(f.target)} |`,
    );
  }
  return lines.join('\n');
}

export function markdown(r: Results, svgName: string): string {
  const out: string[] = [];
  out.push(`# Yubin side by side with Postfix + Dovecot — ${r.date}`);
  out.push('');
  out.push(`Command: \`${r.command}\` (${(r.durationSeconds / 60).toFixed(1)} min, ${r.startedAt} → ${r.finishedAt}).`);
  out.push('');
  out.push(
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB, ${r.machine.os}; load average at the end ${r.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')}. ` +
      `Node.js ${r.versions.node}, Yubin ${r.versions.yubin} (${r.versions.yubinCommit}), Postfix ${r.versions.postfix}, Dovecot ${r.versions.dovecot}. ` +
      'Servers and load generator share the machine; other work on it skews every figure.',
  );
  out.push('');
  out.push(
    '"Yubin vs peer" is the ratio of the medians turned so that above 1 Yubin is better and below 1 the peer is: ' +
      'Yubin/peer for throughput (higher is better), peer/Yubin for memory and latency (lower is better).',
  );
  out.push('');
  out.push(markdownTable(r));
  out.push('');
  out.push(`![ratios](${svgName})`);
  out.push('');
  out.push('## Every round');
  out.push('');
  out.push('| figure | unit | Yubin rounds | peer rounds |');
  out.push('|---|---|---|---|');
  for (const f of r.figures) {
    const list = (v: Array<number | null>) => v.map((x) => fmt(x)).join(', ');
    out.push(`| ${f.label} | ${f.unit} | ${list(f.rounds.yubin)} | ${list(f.rounds.peer)} |`);
  }
  const errorLines: string[] = [];
  for (const f of r.figures) {
    for (const side of ['yubin', 'peer'] as const) {
      for (const e of f.errors[side].slice(0, 10)) errorLines.push(`- ${f.label}, ${side === 'yubin' ? 'Yubin' : 'peer'}: ${e}`);
    }
  }
  out.push('');
  out.push('## Errors');
  out.push('');
  out.push(errorLines.length ? errorLines.join('\n') : 'None.');
  out.push('');
  out.push('## Settings and notes');
  out.push('');
  for (const [k, v] of Object.entries(r.settings)) out.push(`- ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  for (const n of r.notes) out.push(`- ${n}`);
  out.push('');
  out.push('## Details');
  out.push('');
  for (const line of r.detailLines) out.push(`- ${line}`);
  out.push('');
  out.push('Every round\'s full results are in the JSON file (`details`).');
  out.push('');
  return out.join('\n');
}

/** A horizontal bar chart of the advantages on a log scale, with the 1.0 line and the targets. */
export function svg(r: Results): string {
  const figures = r.figures.filter((f) => f.advantage !== null && Number.isFinite(f.advantage) && f.advantage > 0);
  const values = figures.flatMap((f) => [f.advantage!, ...(f.target && figureTargetOnChart(f) ? [figureTargetOnChart(f)!] : [])]);
  const lo = Math.floor(Math.log10(Math.min(0.1, ...values.map((v) => v / 1.3))));
  const hi = Math.ceil(Math.log10(Math.max(10, ...values.map((v) => v * 1.3))));
  const labelWidth = 470;
  const plotWidth = 520;
  const rowHeight = 34;
  const top = 84;
  const height = top + figures.length * rowHeight + 70;
  const width = labelWidth + plotWidth + 330;
  const x = (v: number) => labelWidth + ((Math.log10(v) - lo) / (hi - lo)) * plotWidth;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="10" y="22" font-size="16" font-weight="bold">Yubin vs Postfix+Dovecot, ${esc(r.date)} (median of rounds; &gt;1: Yubin better)</text>`);
  parts.push(`<text x="10" y="42" fill="#555">${esc(`${r.machine.cores} cores, Node.js ${r.versions.node}, Postfix ${r.versions.postfix}, Dovecot ${r.versions.dovecot}; log scale; red tick: target`)}</text>`);
  for (let d = lo; d <= hi; d++) {
    const v = 10 ** d;
    const gx = x(v);
    parts.push(`<line x1="${gx.toFixed(1)}" y1="${top - 5}" x2="${gx.toFixed(1)}" y2="${top + figures.length * rowHeight}" stroke="#ddd"/>`);
    parts.push(`<text x="${gx.toFixed(1)}" y="${top + figures.length * rowHeight + 18}" text-anchor="middle" fill="#555">${d >= 0 ? v.toFixed(0) : v.toFixed(-d)}×</text>`);
  }
  figures.forEach((f, i) => {
    const y = top + i * rowHeight;
    const a = f.advantage!;
    const x0 = x(1);
    const x1 = x(a);
    const color = a >= 1 ? '#2e7d32' : '#c62828';
    parts.push(`<text x="${labelWidth - 8}" y="${y + 20}" text-anchor="end">${esc(f.label)}</text>`);
    parts.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 7}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="18" fill="${color}" opacity="0.8"/>`);
    const t = figureTargetOnChart(f);
    if (t !== null) {
      const tx = x(t);
      parts.push(`<line x1="${tx.toFixed(1)}" y1="${y + 3}" x2="${tx.toFixed(1)}" y2="${y + 29}" stroke="#d50000" stroke-width="3"/>`);
    }
    const verdict = f.target ? (f.target.met === null ? '' : f.target.met ? ' ✓ target met' : ' ✗ target not met') : '';
    const targetNote = f.target && t === null ? ` (${f.target.text})` : '';
    parts.push(`<text x="${labelWidth + plotWidth + 8}" y="${y + 20}">${ratioText(a)}×${esc(verdict + targetNote)}</text>`);
  });
  const x1 = x(1);
  parts.push(`<line x1="${x1.toFixed(1)}" y1="${top - 10}" x2="${x1.toFixed(1)}" y2="${top + figures.length * rowHeight + 4}" stroke="#000" stroke-width="2"/>`);
  parts.push(`<text x="${x1.toFixed(1)}" y="${top - 14}" text-anchor="middle">1.0</text>`);
  parts.push(
    `<text x="10" y="${height - 14}" fill="#555">${esc('Bar: Yubin/peer for throughput, peer/Yubin for memory and latency. Targets on Yubin’s own latency are shown as text.')}</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** The target as an advantage, when it is one (else null: an absolute target). */
function figureTargetOnChart(f: FigureSummary): number | null {
  const m = f.target ? /^≥ ([\d.]+)×/.exec(f.target.text) : null;
  return m ? Number(m[1]) : null;
}

export function writeResults(dir: string, r: Results): { json: string; md: string; svg: string } {
  fs.mkdirSync(dir, { recursive: true });
  const base = `peers-${r.date}`;
  const files = { json: path.join(dir, `${base}.json`), md: path.join(dir, `${base}.md`), svg: path.join(dir, `${base}.svg`) };
  const json = JSON.stringify(r, null, 2) + '\n';
  const chart = svg(r);
  fs.writeFileSync(files.json, json);
  fs.writeFileSync(files.svg, chart);
  fs.writeFileSync(files.md, markdown(r, `${base}.svg`));
  fs.writeFileSync(path.join(dir, 'peers-latest.json'), json);
  fs.writeFileSync(path.join(dir, 'peers-latest.svg'), chart);
  fs.writeFileSync(path.join(dir, 'peers-latest.md'), markdown(r, 'peers-latest.svg'));
  return files;
}
