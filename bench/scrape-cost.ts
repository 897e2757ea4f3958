// What a Prometheus scrape costs the request path: GET throughput of one
// daemon (2 processors, durability full) on a cached 1000-key set, with no
// scrape and with a scrape of /metrics every second, runs interleaved so
// that drift of the machine hits both alike. Prints each run, the medians,
// and the daemon's own CPU time per scrape.
//
//   node bench/scrape-cost.ts [--runs 3] [--duration 10]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts } from '../test/helpers/ports.ts';
import { runLoad } from './loadgen.ts';
import { keySets, preload } from './preload.ts';
import { HOST, cpuTimeUs, startDaemon, stopAll } from './servers.ts';
import { percentile } from './histogram.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, duration: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
const durationMs = Number(values.duration) * 1000;
const SCRAPE_EVERY_MS = 1000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'kv-scrape-'));
const dbFile = join(dir, 'scrape.sqlite');
const set = keySets.hot128;
preload(dbFile, [set]);
const [metricsPort] = await freePorts(1);
const daemon = await startDaemon({ processors: 2, dbFile, dataDir: dir, metricsPort });
const results: Record<'none' | 'every 1 s', number[]> = { none: [], 'every 1 s': [] };
const scrapeMs: number[] = [];
try {
  for (let run = 0; run < runs; run++) {
    for (const mode of ['none', 'every 1 s'] as const) {
      let timer: NodeJS.Timeout | undefined;
      const r = await runLoad(
        { host: HOST, port: daemon.port, style: 'persistent', connections: 16, depth: 1, getFraction: 1, valueSize: set.valueSize, keyPrefix: set.prefix, keyCount: set.count },
        {
          threads: 2,
          warmupMs: 1000,
          durationMs,
          onWindow: (edge) => {
            if (mode === 'none') return;
            if (edge === 'start') {
              timer = setInterval(() => {
                const t0 = performance.now();
                void fetch(`http://${HOST}:${metricsPort}/metrics`).then((res) => res.text()).then(() => scrapeMs.push(performance.now() - t0));
              }, SCRAPE_EVERY_MS);
            } else clearInterval(timer);
          },
        },
      );
      clearInterval(timer);
      results[mode].push(r.opsPerSec);
      console.log(`run ${run + 1} scrape ${mode.padEnd(9)} ${Math.round(r.opsPerSec)} GET/s, p99 ${(percentile(r.hist, 0.99) / 1000).toFixed(2)} ms, errors ${r.errors}`);
    }
  }
  const none = median(results.none), scraped = median(results['every 1 s']);
  console.log(`\nmedian GET/s: no scrape ${Math.round(none)}, scrape every 1 s ${Math.round(scraped)} (${(((scraped - none) / none) * 100).toFixed(1)} %)`);
  console.log(`scrape time under load: median ${median(scrapeMs).toFixed(1)} ms, max ${Math.max(...scrapeMs).toFixed(1)} ms over ${scrapeMs.length} scrapes`);
  // the daemon's own CPU per scrape, idle otherwise: what a scrape takes from the cores
  const SCRAPES = 50;
  const cpuBefore = cpuTimeUs(daemon.pid);
  for (let i = 0; i < SCRAPES; i++) await (await fetch(`http://${HOST}:${metricsPort}/metrics`)).text();
  const cpuAfter = cpuTimeUs(daemon.pid);
  if (cpuBefore !== undefined && cpuAfter !== undefined) {
    console.log(`daemon CPU per scrape (idle daemon, ${SCRAPES} scrapes back to back): ${((cpuAfter - cpuBefore) / SCRAPES / 1000).toFixed(2)} ms`);
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
