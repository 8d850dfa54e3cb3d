/**
 * Prometheus metrics are an ops surface, not a public one: served on METRICS_PORT (its
 * own listener, loopback by default), never on the public port.
 */
import test from 'ava';
import { startTestGateway } from './helpers/gateway.ts';
import { freePort } from './helpers/ports.ts';

test('metrics answer on the ops port, and the public port does not serve them', async (t) => {
  const metricsPort = await freePort();
  const gw = await startTestGateway({ METRICS_PORT: String(metricsPort) });
  t.teardown(() => gw.close());
  t.is(gw.metricsUrl, `http://127.0.0.1:${metricsPort}`, 'loopback by default');
  t.is((await fetch(`${gw.issuer}/healthz`)).status, 200);

  const publicMetrics = await fetch(`${gw.issuer}/metrics`);
  t.is(publicMetrics.status, 404);
  t.false((await publicMetrics.text()).includes('gatehouse_http_requests_total'));

  const ops = await fetch(`${gw.metricsUrl}/metrics`);
  t.is(ops.status, 200);
  t.regex(ops.headers.get('content-type') ?? '', /^text\/plain/);
  const body = await ops.text();
  t.regex(body, /gatehouse_http_requests_total\{status="2xx"\} \d+/);
  t.regex(body, /process_cpu_user_seconds_total/);
  t.is((await fetch(`${gw.metricsUrl}/healthz`)).status, 404, 'the ops port serves metrics only');
  t.is((await fetch(`${gw.metricsUrl}/metrics`, { method: 'POST' })).status, 404);
});

test('without METRICS_PORT there are no metrics anywhere', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  t.is(gw.metricsUrl, null);
  t.is((await fetch(`${gw.issuer}/metrics`)).status, 404);
});

test('closing the gateway closes the ops port', async (t) => {
  const metricsPort = await freePort();
  const gw = await startTestGateway({ METRICS_PORT: String(metricsPort) });
  t.is((await fetch(`${gw.metricsUrl}/metrics`)).status, 200);
  await gw.close();
  await t.throwsAsync(fetch(`http://127.0.0.1:${metricsPort}/metrics`));
});
