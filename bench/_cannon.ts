/**
 * The load generator process (pinned to its own core by bench/_lib.ts): runs autocannon
 * with the options given as JSON in argv[2] and prints one JSON line with the totals and
 * its own CPU seconds, so a report can show the generator was not the bottleneck.
 */
import autocannon from 'autocannon';

const options = JSON.parse(process.argv[2] ?? '{}') as { url: string; seconds: number; connections: number; requests: autocannon.Request[] };
const cpu0 = process.cpuUsage();
const result = await autocannon({
  url: options.url,
  duration: options.seconds,
  connections: options.connections,
  pipelining: 1,
  requests: options.requests,
});
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  requests: result.requests.total,
  seconds: result.duration,
  errors: result.errors + result.timeouts,
  non2xx: result.non2xx,
  generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
}));
