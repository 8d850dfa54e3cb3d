/**
 * Summarises a V8 CPU profile (node --cpu-prof): self time grouped into areas a reader
 * can act on (argon2 in its threads is not on this thread: the profile shows the main
 * thread only), and the top functions.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }

const AREAS: Array<[string, RegExp]> = [
  ['gc', /^\(garbage collector\)$/],
  ['idle', /^\((idle|program)\)$/],
  ['oidc-provider', /node_modules\/oidc-provider\//],
  ['jose (signing, JWT)', /node_modules\/jose\//],
  ['koa and routing', /node_modules\/(koa|@koa|koa-compose|koa-router|path-to-regexp|co-body|raw-body|cookies|keygrip)/],
  ['eta (page rendering)', /node_modules\/eta\//],
  ['zod', /node_modules\/zod\//],
  ['pino (logging)', /node_modules\/pino/],
  ['argon2 binding', /node_modules\/@node-rs\/argon2/],
  ['gatehouse (gateway/adapters/policies)', /\/(gateway|adapters|policies)\//],
  ['node http/net/streams', /^node:(_http|http|net|stream|internal\/streams|internal\/http|_stream)/],
  ['node crypto', /^node:(crypto|internal\/crypto)/],
  ['node other', /^node:/],
  ['other npm', /node_modules\//],
];

/** `skipMs`: leave out the first milliseconds of the profile (the process's start-up). */
export function summarizeProfile(file: string, top = 15, skipMs = 0): { totalMs: number; areas: Record<string, number>; text: string } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  let clock = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    clock += dt;
    if (clock < skipMs * 1000) return;
    total += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url || frame.functionName;
    const area = AREAS.find(([, re]) => re.test(where))?.[0] ?? `native: ${frame.functionName || '?'}`;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*?(node_modules\/|\/(gateway|adapters|policies)\/)/, '$1')}:${frame.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const busy = total - (areas.get('idle') ?? 0);
  const lines = ['self time by area (share of busy main-thread time):'];
  const sortedAreas = [...areas].filter(([k]) => k !== 'idle').sort((a, b) => b[1] - a[1]);
  for (const [k, us] of sortedAreas.slice(0, top)) lines.push(`  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${k}`);
  lines.push('top functions:');
  for (const [k, us] of [...fns].filter(([k]) => !/^\((idle|program)\)/.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${k}`);
  return { totalMs: Math.round(busy / 1000), areas: Object.fromEntries(sortedAreas.map(([k, us]) => [k, Math.round(us / 1000)])), text: lines.join('\n') };
}
