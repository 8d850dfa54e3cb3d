/**
 * OpenID Connect Back-Channel Logout 1.0, delivered durably.
 *
 * A notice (client, issuer, sub, sid) is queued in the store's delivery queue the moment a
 * session or an account ends (gateway/oidc/account-sessions.ts); the worker signs a logout
 * token at each attempt (fresh iat/exp/jti; signed like an ID token, `typ` JWT, with the
 * `http://schemas.openid.net/event/backchannel-logout` event, `sid` when known) and POSTs
 * it to the client's `backchannel_logout_uri`. 200 or 204 is delivered; anything else, a
 * timeout or a refused connection is retried with backoff (5 s doubling to 30 min, 12
 * attempts), and a worker that dies mid-delivery loses nothing (its lease expires).
 *
 *   const backchannel = createBackchannel({ store, providers, logger });
 *   await backchannel.notify([{ clientId, issuer, sub, sid }]);
 *   ...; await backchannel.stop();
 */
import { randomUUID } from 'node:crypto';
import type { Provider } from 'oidc-provider';
import type { Delivery, Store } from '../../adapters/store.ts';
import { exponentialBackoff, startQueueWorker, type QueueWorker } from '../../adapters/queue-worker.ts';
import type { Logger } from '../runtime/logger.ts';
import type { LogoutNotice, LogoutNotifier } from './account-sessions.ts';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const TIMEOUT_MS = 5000;

export interface Backchannel extends LogoutNotifier {
  stop(): Promise<void>;
}

export interface BackchannelOptions {
  store: Pick<Store, 'deliveries'>;
  /** Every layout's provider: the notice's issuer picks the one that signs. */
  providers: Provider[];
  logger: Logger;
  /** Worker tuning (tests): poll interval and backoff. */
  intervalMs?: number;
  backoff?: (attempt: number) => number;
}

interface BackchannelClient {
  clientId: string;
  backchannelLogoutUri?: string;
}

/** A delivery that cannot succeed by retrying (unknown issuer or client): buried at once. */
class Undeliverable extends Error {}

export function createBackchannel(options: BackchannelOptions): Backchannel {
  const { store, providers, logger } = options;
  const byIssuer = new Map(providers.map((p) => [p.issuer, p]));

  async function clientOf(provider: Provider, clientId: string): Promise<BackchannelClient | undefined> {
    return (await provider.Client.find(clientId)) as unknown as BackchannelClient | undefined;
  }

  async function deliver(item: Delivery): Promise<void> {
    const provider = byIssuer.get(item.payload.issuer ?? '');
    if (!provider) throw new Undeliverable(`unknown issuer ${item.payload.issuer}`);
    const client = await clientOf(provider, item.target);
    if (!client?.backchannelLogoutUri) throw new Undeliverable('client has no backchannel_logout_uri');
    const token = new provider.IdToken({ sub: item.payload.sub }, { client, ctx: undefined } as never) as unknown as {
      mask: Record<string, null>;
      set(name: string, value: unknown): void;
      issue(options: { use: 'logout' }): Promise<string>;
    };
    token.mask = { sub: null };
    token.set('events', { [EVENT]: {} });
    token.set('jti', randomUUID());
    if (item.payload.sid) token.set('sid', item.payload.sid);
    const logoutToken = await token.issue({ use: 'logout' });
    const response = await fetch(client.backchannelLogoutUri, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: logoutToken }).toString(),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (response.status !== 200 && response.status !== 204) {
      throw Object.assign(new Error(`expected 200 or 204 from the back-channel logout URI, got ${response.status}`), { code: `HTTP_${response.status}` });
    }
  }

  const worker: QueueWorker = startQueueWorker<Delivery>({
    name: 'backchannel_logout',
    queue: store.deliveries,
    logger,
    intervalMs: options.intervalMs ?? 1000,
    maxAttempts: 16,
    backoff: options.backoff ?? exponentialBackoff({ baseMs: 1000, capMs: 10 * 60_000 }),
    async deliver(item) {
      try {
        await deliver(item);
      } catch (error) {
        if (error instanceof Undeliverable) {
          logger.warn({ code: 'backchannel_logout_undeliverable', queueId: item.id, client: item.target, reason: error.message }, 'back-channel logout dropped');
          return;
        }
        throw error;
      }
    },
  });

  return {
    async notify(notices: LogoutNotice[]) {
      let queued = 0;
      for (const notice of notices) {
        const provider = byIssuer.get(notice.issuer) ?? providers[0];
        const client = provider ? await clientOf(provider, notice.clientId) : undefined;
        if (!client?.backchannelLogoutUri) continue;
        const payload: Record<string, string> = { issuer: notice.issuer, sub: notice.sub };
        if (notice.sid) payload.sid = notice.sid;
        await store.deliveries.enqueue({ kind: 'backchannel-logout', target: notice.clientId, payload });
        queued += 1;
      }
      if (queued) worker.kick();
    },
    stop: () => worker.stop(),
  };
}
