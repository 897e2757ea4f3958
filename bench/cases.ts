// The benchmark's matrix: which cases run, what each compares with, and the
// targets. Chosen to answer two questions (how many processors per port, and
// how close the daemon gets to the bare-Node and raw-SQLite baselines)
// rather than the full cross product; see bench/README.md.

import { keySets, type KeySet } from './preload.ts';
import type { ClientStyle } from './loadgen.ts';

export type Workload = 'GET' | 'PUT' | 'MIX';

export interface CaseDef {
  name: string;
  kind: 'kv' | 'echo' | 'sqlite';
  /** daemon processors, echo threads; 1 for SQLite (one thread) */
  threads: number;
  style?: ClientStyle;
  workload?: Workload;
  keys: KeySet;
  sqlite?: 'select' | 'insert';
  /** name of the case this one is compared with */
  baseline?: string;
  /** the ratio to the baseline the issue asks for */
  target?: number;
  /** left out of --quick */
  fullOnly?: boolean;
}

/** Client-side concurrency per style (over all load-generator threads). */
export const CONNECTIONS: Record<ClientStyle, number> = { persistent: 50, pipelined: 8, oneshot: 16 };
export const PIPELINE_DEPTH = 16;
/** Rows per transaction of the raw INSERT baseline: the most the daemon's group commit can gather with 50 persistent clients. */
export const INSERT_BATCH_ROWS = CONNECTIONS.persistent;

export const GET_FRACTION: Record<Workload, number> = { GET: 1, PUT: 0, MIX: 0.9 };

const keyName = (k: KeySet) => (k.count > 1000 ? `large${k.valueSize}` : `hot${k.valueSize}`);
const echoName = (style: ClientStyle, t: number) => `echo ${style} t${t}`;
const kvName = (w: Workload, k: KeySet, style: ClientStyle, p: number) => `kv ${w} ${keyName(k)} ${style} p${p}`;
export const SQLITE_SELECT = 'sqlite select hot128';
const sqliteInsertName = (k: KeySet) => `sqlite insert ${keyName(k)} batch${INSERT_BATCH_ROWS}`;

function kv(w: Workload, k: KeySet, style: ClientStyle, p: number, extra: Partial<CaseDef> = {}): CaseDef {
  const baseline = w === 'PUT' ? sqliteInsertName(k) : echoName(style, p);
  return { name: kvName(w, k, style, p), kind: 'kv', threads: p, style, workload: w, keys: k, baseline, ...extra };
}

/** Processor counts to measure: 1, 2 and the core count, without repeats. */
export function processorCounts(cores: number): number[] {
  return [...new Set([1, 2, cores])].sort((a, b) => a - b);
}

export function allCases(cores: number): CaseDef[] {
  const cases: CaseDef[] = [
    { name: SQLITE_SELECT, kind: 'sqlite', threads: 1, sqlite: 'select', keys: keySets.hot128 },
    { name: sqliteInsertName(keySets.hot128), kind: 'sqlite', threads: 1, sqlite: 'insert', keys: keySets.hot128 },
    { name: sqliteInsertName(keySets.hot2048), kind: 'sqlite', threads: 1, sqlite: 'insert', keys: keySets.hot2048, fullOnly: true },
  ];
  const counts = processorCounts(cores);
  for (const p of counts) {
    for (const style of ['persistent', 'pipelined', 'oneshot'] as const) {
      cases.push({ name: echoName(style, p), kind: 'echo', threads: p, style, keys: keySets.hot128 });
    }
    cases.push(kv('GET', keySets.hot128, 'persistent', p, { target: 0.8 }));
    cases.push(kv('GET', keySets.hot128, 'pipelined', p, { target: 0.6 }));
    cases.push(kv('GET', keySets.hot128, 'oneshot', p, { target: 0.8 }));
    cases.push(kv('PUT', keySets.hot128, 'persistent', p, { target: 0.5 }));
    cases.push(kv('MIX', keySets.large128, 'persistent', p));
  }
  // value size and key space, at the largest processor count only
  const top = counts[counts.length - 1];
  const full = { fullOnly: true };
  cases.push(kv('GET', keySets.large128, 'persistent', top, full));
  cases.push(kv('GET', keySets.hot2048, 'persistent', top, full));
  cases.push(kv('PUT', keySets.hot2048, 'persistent', top, full));
  cases.push(kv('MIX', keySets.hot2048, 'persistent', top, full));
  cases.push(kv('GET', keySets.large128, 'pipelined', top, full));
  cases.push(kv('PUT', keySets.hot128, 'pipelined', top, full));
  return cases;
}

/** The cases to run: those matching `only` (a case-insensitive regex), plus the baselines they compare with. */
export function selectCases(cases: CaseDef[], o: { quick: boolean; only?: string }): CaseDef[] {
  const pattern = o.only ? new RegExp(o.only, 'i') : undefined;
  const wanted = new Set(cases.filter((c) => (!o.quick || !c.fullOnly) && (!pattern || pattern.test(c.name))).map((c) => c.name));
  for (const c of cases) if (wanted.has(c.name) && c.baseline) wanted.add(c.baseline);
  return cases.filter((c) => wanted.has(c.name));
}
