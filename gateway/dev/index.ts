/**
 * First run: what a newcomer meets after `npm start`. The landing page at `/` (always:
 * links to the admin console, discovery and, in development, the two aids below; nothing
 * secret), the sample portal at /sample-portal/ (a tiny customer portal registered as the
 * demo client, to sign up and sign in as a customer and see the claims; SAMPLE_PORTAL,
 * on by default outside production and never in production) and the dev mailbox at
 * /dev/mailbox (the outbox readable in the browser, only in development without
 * SMTP_URL on a loopback HOST). `firstRunLinks` is also what gateway/main.ts prints.
 *
 *   const links = firstRunLinks(ctx);   // { console, samplePortal | null, mailbox | null, discovery }
 *   routers.push(...firstRunRoutes(ctx));
 */
import Router from '@koa/router';
import type { GatewayContext } from '../runtime/context.ts';
import { devMailboxEnabled, devMailboxRoutes, MAILBOX_PATH } from './mailbox.ts';
import { SAMPLE_PORTAL_PATH, samplePortalRoutes } from './sample-portal.ts';

export { samplePortalClientUris } from './sample-portal.ts';

export interface FirstRunLinks {
  console: string;
  /** Null when the sample portal is off (production, SAMPLE_PORTAL=off, or CLIENTS_FILE replaced the demo client). */
  samplePortal: string | null;
  /** Null when the dev mailbox is not served. */
  mailbox: string | null;
  discovery: string;
  openapi: string;
}

export function firstRunLinks(ctx: Pick<GatewayContext, 'config' | 'clients'>): FirstRunLinks {
  const issuer = ctx.config.ISSUER;
  return {
    console: `${issuer}/admin`,
    samplePortal: ctx.config.samplePortal && ctx.clients.demo ? `${issuer}${SAMPLE_PORTAL_PATH}/` : null,
    mailbox: devMailboxEnabled(ctx.config) ? `${issuer}${MAILBOX_PATH}` : null,
    discovery: `${issuer}/.well-known/openid-configuration`,
    openapi: `${issuer}/admin/api/openapi.json`,
  };
}

/** The landing page, plus the sample portal and the dev mailbox when they are on. */
export function firstRunRoutes(ctx: Pick<GatewayContext, 'config' | 'clients' | 'views' | 'policy' | 'store' | 'logger'>): Router[] {
  const links = firstRunLinks(ctx);
  const landing = new Router();
  landing.get('/', (c) => {
    c.type = 'html';
    c.body = ctx.views.render('home', { links });
  });
  const routers = [landing];
  if (links.samplePortal && ctx.clients.demo) routers.push(samplePortalRoutes(ctx, ctx.clients.demo, links));
  if (links.mailbox) routers.push(devMailboxRoutes(ctx));
  return routers;
}
