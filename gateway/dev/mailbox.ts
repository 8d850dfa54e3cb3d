/**
 * The dev mailbox: the outbox as a page, like Mailpit, so that a verification, invite or
 * reset mail can be read (and its link followed) on a machine without an SMTP server.
 *
 *   GET /dev/mailbox   the newest messages first, their text with links clickable
 *
 * Those messages hold live single-use links, so the page is a way into any account that
 * signs up: it is served only when the gateway runs in development (NODE_ENV is not
 * production), sends no mail (SMTP_URL unset: messages stay in the outbox) and listens on
 * a loopback address only (HOST 127.0.0.1, localhost or ::1), so only people on this
 * machine can reach it. Anything else and the route does not exist (404). A request that
 * a proxy forwarded (X-Forwarded-For, Forwarded) also gets 404: a loopback gateway
 * published through a proxy on the same machine is not "this machine only" any more.
 */
import Router from '@koa/router';
import type { GatewayContext } from '../runtime/context.ts';
import type { Config } from '../runtime/config.ts';

export const MAILBOX_PATH = '/dev/mailbox';
const SHOWN = 50;

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** True when the dev mailbox may be served (see the opening comment). */
export function devMailboxEnabled(config: Pick<Config, 'NODE_ENV' | 'SMTP_URL' | 'HOST'>): boolean {
  return config.NODE_ENV !== 'production' && !config.SMTP_URL && isLoopbackHost(config.HOST);
}

export type TextPart = { text: string } | { href: string };

/**
 * Splits a plain-text mail into text and http(s) links, for the view to escape and link.
 *
 * @example linkParts('Open https://x.test/v/1.') // [{ text: 'Open ' }, { href: 'https://x.test/v/1' }, { text: '.' }]
 */
export function linkParts(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let last = 0;
  for (const match of text.matchAll(/https?:\/\/[^\s<>"']+/g)) {
    const href = match[0].replace(/[.,;:!?)\]]+$/, '');
    if (match.index > last) parts.push({ text: text.slice(last, match.index) });
    parts.push({ href });
    last = match.index + href.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

export function devMailboxRoutes(ctx: Pick<GatewayContext, 'config' | 'store' | 'views'>): Router {
  const router = new Router();
  router.get(MAILBOX_PATH, async (c, next) => {
    if (c.get('x-forwarded-for') || c.get('forwarded')) return next();
    const all = await ctx.store.outbox.list({});
    const messages = all
      .toSorted((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
      .slice(0, SHOWN)
      .map((m) => ({ id: m.id, to: m.to, subject: m.subject, status: m.status, createdAt: m.createdAt.toISOString(), parts: linkParts(m.text) }));
    c.type = 'html';
    c.body = ctx.views.render('dev-mailbox', { messages, total: all.length, shown: SHOWN, host: ctx.config.HOST });
  });
  return router;
}
