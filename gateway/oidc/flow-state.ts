/**
 * Flow state, kept server-side: the one way a sign-in or sign-up path remembers
 * something between two requests (Ory Kratos's stored flow is the model). A flow is a
 * record in the store with a name, a zod schema checked every time it is read, and an
 * expiry; the browser holds only its opaque id (256 random bits), in a signed, HttpOnly,
 * SameSite=Lax cookie scoped to the paths that need it, or nowhere at all when the flow
 * is found another way. The store keeps a hash of the flow's name and the id only, like
 * every one-time secret, so an id never even finds another flow's record.
 *
 *   const GoogleStart = defineFlow('google-start', z.object({ uid: z.string(), verifier: z.string() }), 10 * 60_000, 'gh.google');
 *   const id = await GoogleStart.start(store, { uid, verifier });
 *   GoogleStart.cookie.set(c, id, '/federation/google');
 *   ...
 *   const state = await GoogleStart.take(store, GoogleStart.cookie.get(c));   // single use; null when gone, expired or malformed
 *
 * Where an oidc-provider interaction exists, the flow belongs to it: its state names the
 * interaction uid, and the route compares that with the interaction of this browser
 * (gateway/oidc/interaction.ts) before it acts. Flows in use: the Google round trip and
 * its verified result (signup/google/), the AD connector hand-off
 * (signup/active-directory/), the portal sign-up's way back to the application
 * (signup/portal/). Any other module may define its own (the admin console's sign-in
 * transaction is one): a name, a schema, a lifetime, a cookie name.
 *
 * Expired records are never returned (expiry is checked on read) and are removed by the
 * store's token sweeper.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Store } from '../../adapters/store.ts';
import { hashSecret } from '../runtime/secrets.ts';

/** What a flow needs of the store. */
export type FlowStore = { tokens: Pick<Store['tokens'], 'create' | 'peek' | 'consume'> };

const ID_PATTERN = /^[\w-]{43}$/;
const stored = z.object({ flow: z.string(), state: z.unknown() });

/** The browser's handle on a flow: the id in a signed, HttpOnly, SameSite=Lax cookie on one path. */
export interface FlowCookie {
  readonly name: string;
  set(c: Context, id: string, path: string): void;
  /** The id, when the cookie is present, correctly signed and well formed. */
  get(c: Context): string | null;
  clear(c: Context, path: string): void;
}

export interface Flow<S extends z.ZodType> {
  readonly name: string;
  readonly schema: S;
  readonly ttlMs: number;
  readonly cookie: FlowCookie;
  /** Stores the state and returns the opaque id: the only thing that may leave the server. */
  start(store: FlowStore, state: z.input<S>, options?: { now?: Date; ttlMs?: number }): Promise<string>;
  /** The state, schema-checked; null when the id is malformed, unknown, expired, of another flow, or the record fails the schema. */
  read(store: FlowStore, id: string | null | undefined, now?: Date): Promise<z.output<S> | null>;
  /** Like `read`, and single-use: the first caller gets the state, every later or concurrent one null. */
  take(store: FlowStore, id: string | null | undefined, now?: Date): Promise<z.output<S> | null>;
}

export function flowCookie(name: string, maxAgeMs: number): FlowCookie {
  return {
    name,
    set(c, id, path) {
      c.cookies.set(name, id, { signed: true, httpOnly: true, sameSite: 'lax', path, secure: c.secure, overwrite: true, maxAge: maxAgeMs });
    },
    get(c) {
      const id = c.cookies.get(name, { signed: true });
      return id && ID_PATTERN.test(id) ? id : null;
    },
    clear(c, path) {
      c.cookies.set(name, null, { signed: true, httpOnly: true, sameSite: 'lax', path, secure: c.secure, overwrite: true });
    },
  };
}

/**
 * Defines a flow: `name` keeps flows apart (an id of one flow never reads as another),
 * `schema` is checked on every read, `ttlMs` bounds its life, `cookieName` names the
 * cookie that carries its id when the browser carries it.
 */
export function defineFlow<S extends z.ZodType>(name: string, schema: S, ttlMs: number, cookieName = `gh.flow.${name}`): Flow<S> {
  const key = (id: string) => hashSecret(`${name}:${id}`);
  function unpack(data: unknown): z.output<S> | null {
    const record = stored.safeParse(data);
    if (!record.success || record.data.flow !== name) return null;
    const state = schema.safeParse(record.data.state);
    return state.success ? state.data : null;
  }

  return {
    name,
    schema,
    ttlMs,
    cookie: flowCookie(cookieName, ttlMs),
    async start(store, state, options = {}) {
      const now = options.now ?? new Date();
      const checked = schema.parse(state);
      const id = randomBytes(32).toString('base64url');
      await store.tokens.create({
        kind: 'flow',
        hash: key(id),
        customerId: null,
        data: { flow: name, state: checked },
        expiresAt: new Date(now.getTime() + (options.ttlMs ?? ttlMs)),
        createdAt: now,
      });
      return id;
    },
    async read(store, id, now = new Date()) {
      if (!id || !ID_PATTERN.test(id)) return null;
      const token = await store.tokens.peek('flow', key(id), now);
      return token ? unpack(token.data) : null;
    },
    async take(store, id, now = new Date()) {
      if (!id || !ID_PATTERN.test(id)) return null;
      const token = await store.tokens.consume('flow', key(id), now);
      return token ? unpack(token.data) : null;
    },
  };
}
