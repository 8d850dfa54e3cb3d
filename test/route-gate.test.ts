/**
 * The route gate (gateway/http/route-gate.ts) runs the app's routers only for paths one
 * of them could match, and is otherwise invisible: every path the routers answer is still
 * answered by them (case-insensitively, with parameters, under a prefix, through a prefixed
 * `use`, the exact "/" route, an alternation), paths they do not own go straight on, and
 * an expression it does not understand makes it pass everything.
 */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { reachOf, routeGate } from '../gateway/http/route-gate.ts';

function routers(): Router[] {
  const interaction = new Router({ prefix: '/interaction' });
  interaction.get('/:uid', (c) => (c.body = `page ${c.params.uid}`));
  interaction.post('/:uid/login', (c) => (c.body = 'login'));
  const admin = new Router({ prefix: '/admin' });
  admin.use(async (c, next) => {
    c.set('x-admin-guard', 'yes');
    await next();
  });
  admin.get('/companies', (c) => (c.body = 'companies'));
  const api = new Router();
  api.all(['/admin/api', '/admin/api/*rest'], (c) => (c.body = 'api fallback'));
  const root = new Router();
  root.get('/', (c) => (c.body = 'home'));
  root.get('/static/app.css', (c) => (c.body = 'css'));
  return [interaction, admin, api, root];
}

async function serve(t: import('ava').ExecutionContext, rs: Router[]): Promise<{ url: string; reachedTail: string[] }> {
  const app = new Koa();
  const reachedTail: string[] = [];
  app.use(routeGate(rs));
  app.use(async (c) => {
    reachedTail.push(c.path);
    c.body = 'tail';
  });
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reachedTail };
}

test('paths the routers own are answered by them; others go on to the next middleware', async (t) => {
  const { url, reachedTail } = await serve(t, routers());
  const text = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${url}${path}`, init);
    return `${res.status} ${await res.text()}${res.headers.get('x-admin-guard') ? ' +guard' : ''}`;
  };
  t.is(await text('/interaction/abc'), '200 page abc');
  t.is(await text('/INTERACTION/abc/'), '200 page abc');
  t.is(await text('/interaction/abc/login', { method: 'POST' }), '200 login');
  t.is(await text('/admin/companies'), '200 companies +guard');
  t.is(await text('/admin/api'), '200 api fallback');
  t.is(await text('/admin/api/anything/here', { method: 'DELETE' }), '200 api fallback');
  t.is(await text('/'), '200 home');
  t.is(await text('/static/app.css'), '200 css');
  t.deepEqual(reachedTail, []);
  t.is(await text('/token', { method: 'POST' }), '200 tail');
  t.is(await text('/auth?x=1'), '200 tail');
  t.is(await text('/jwks'), '200 tail');
  t.is(await text('/interactio'), '200 tail');
  t.deepEqual(reachedTail, ['/token', '/auth', '/jwks', '/interactio']);
});

test('what a compiled route expression can reach', (t) => {
  t.deepEqual(reachOf(/^(?:\/interaction\/([^\/]+)\/login)(?:\/$)?$/i), [{ prefix: '/interaction/' }]);
  t.deepEqual(reachOf(/^(?:\/)(?:\/$)?$/i), [{ exact: '/' }]);
  t.deepEqual(reachOf(/^(?:\/static\/app\.css)(?:\/$)?$/i), [{ exact: '/static/app.css' }]);
  t.deepEqual(reachOf(/^(?:\/admin\/api\/([^]+)|\/admin\/api)(?:\/$)?$/i), [{ prefix: '/admin/api/' }, { exact: '/admin/api' }]);
  t.deepEqual(reachOf(/^\/admin(?:\/|$)/), [{ prefix: '/admin' }]);
  t.deepEqual(reachOf(/^(?:\/admins?)(?:\/$)?$/i), [{ prefix: '/admin' }]);
  t.is(reachOf(/\/admin/), null, 'not anchored');
  t.is(reachOf(/^\/a|\/b/), null, 'top-level alternation');
  t.is(reachOf(/^(?:\/a)?\/b/), null, 'optional first group');
});

test('a route the gate does not understand makes it pass every path', async (t) => {
  const odd = new Router();
  odd.get(/\/anywhere\/(\d+)$/, (c) => (c.body = 'odd'));
  const { url, reachedTail } = await serve(t, [...routers(), odd]);
  t.is(await (await fetch(`${url}/deep/anywhere/42`)).text(), 'odd');
  t.is(await (await fetch(`${url}/token`)).text(), 'tail');
  t.deepEqual(reachedTail, ['/token']);
});
