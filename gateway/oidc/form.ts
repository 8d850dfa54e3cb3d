/**
 * Reading a form body before oidc-provider does, without taking it away: the raw text is
 * left on `req.body`, where oidc-provider's body parser looks when the stream is spent.
 * Optionally rewritten first (gateway/oidc/refresh-envelope.ts unwraps refresh tokens).
 *
 *   const params = await peekForm(ctx);                      // null: not a form, or too large
 *   await peekForm(ctx, (p) => ({ ...p, token: unwrap(p.token) }));
 */
import type { Context } from 'koa';

const BODY_LIMIT = 56 * 1024; // oidc-provider's own limit

export async function peekForm(ctx: Context, rewrite?: (params: Record<string, string>) => Record<string, string>): Promise<Record<string, string> | null> {
  if (!ctx.is('application/x-www-form-urlencoded')) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) return null;
    chunks.push(chunk as Buffer);
  }
  let params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
  if (rewrite) params = rewrite(params);
  (ctx.req as unknown as { body?: string }).body = new URLSearchParams(params).toString();
  return params;
}
