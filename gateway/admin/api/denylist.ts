/**
 * The denylist: full addresses and domains nobody may sign up with (agents need an
 * admin override). `POST` takes one entry or tens of thousands in one request (parsed
 * and canonicalised by the policy engine, written in one bulk store call whose unique
 * index drops duplicates, applied to every process's snapshot as one delta); `GET` searches
 * and pages; `DELETE /:value` takes the URL-encoded address or domain.
 */
import * as z from 'zod';
import { checkConfiguration, parseDenylistEntries, type DenylistEntry, type DenylistValue, type ParseResult } from '../../../policies/index.ts';
import { notFound } from '../../http/errors.ts';
import { configurationOf } from './configuration.ts';
import { issuesFromZod, prefixIssues } from '../../http/validation.ts';
import { defineRoute, type AdminDeps, type AdminRoute, type BodySpec } from './route.ts';
import { DenylistBody, DenylistQuery, DenylistValueParams, ErrorBody, Warnings } from './schemas.ts';

const Entry = z.object({ value: z.string(), kind: z.enum(['email', 'domain']), createdAt: z.string(), createdBy: z.string(), note: z.string().optional() });

/** Structure by zod, then each entry by the policy engine's parser (paths under `entries`). */
function parseDenylistBody(raw: unknown): ParseResult<DenylistValue[]> {
  const shape = DenylistBody.safeParse(raw);
  if (!shape.success) return { ok: false, issues: issuesFromZod(shape.error.issues) };
  const parsed = parseDenylistEntries(shape.data.entries);
  if (!parsed.ok) return { ok: false, issues: prefixIssues(['entries'], parsed.issues) };
  return parsed;
}

export const denylistBody: BodySpec<DenylistValue[], unknown> = {
  schema: DenylistBody,
  parse: parseDenylistBody,
  example: { entries: ['spammer@example.com', '*.throwaway.example', { value: 'junk.example', note: 'abuse report #12' }] },
};

/** The canonical form of a value given in a path; unparsable input is looked up as given. */
function canonicalValue(raw: string): string {
  const parsed = parseDenylistEntries([raw]);
  return parsed.ok && parsed.value[0] ? parsed.value[0].value : raw.trim().toLowerCase();
}

export function denylistRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw } = deps;
  return [
    defineRoute({
      name: 'listDenylist',
      method: 'get',
      path: '/denylist',
      summary: 'Search and page the denylist (sorted by value)',
      roles: ['admin'],
      query: DenylistQuery,
      responses: { 200: { description: 'A page of entries and the total matching', schema: z.object({ items: z.array(Entry), total: z.number(), offset: z.number(), limit: z.number() }) } },
      async handle({ query }) {
        const page = await gw.store.denylist.list(query);
        return { body: { items: page.items, total: page.total, offset: query.offset, limit: query.limit } };
      },
    }),
    defineRoute({
      name: 'addDenylist',
      method: 'post',
      path: '/denylist',
      summary: 'Add one or many addresses or domains (`x.com`, `@x.com`, `*.x.com` are the domain)',
      roles: ['admin'],
      recentAuth: true,
      body: denylistBody,
      responses: {
        200: { description: 'How many were new, and warnings (e.g. a company accepts a now-denied domain)', schema: z.object({ received: z.number(), added: z.number(), warnings: Warnings }) },
        422: { description: 'validation_failed: every bad entry by index', schema: ErrorBody },
      },
      async handle({ body: values, principal }) {
        const now = new Date();
        const entries: DenylistEntry[] = values.map((v) => ({ ...v, createdAt: now, createdBy: principal.actor }));
        const added = await gw.policy.update(async () => ({
          result: await gw.store.denylist.add(entries),
          delta: { op: 'denylist.add', entries: values.map(({ value, kind }) => ({ value, kind })) },
        }));
        await gw.audit('denylist.add', { actor: principal.actor, target: values.length === 1 ? values[0]!.value : `${values.length} entries`, before: null, after: values.map((v) => v.value), data: { received: values.length, added } });
        // A new domain entry may hit a company's accepted domain: say so (the denylist wins).
        const hasDomains = values.some((v) => v.kind === 'domain');
        const warnings = hasDomains ? checkConfiguration(configurationOf(gw.policy.current())).warnings.filter((w) => w.code === 'denylisted_accepted_domain') : [];
        return { body: { received: values.length, added, warnings } };
      },
    }),
    defineRoute({
      name: 'removeDenylist',
      method: 'delete',
      path: '/denylist/:value',
      summary: 'Remove an address or domain (URL-encoded)',
      roles: ['admin'],
      recentAuth: true,
      params: DenylistValueParams,
      responses: { 204: { description: 'Removed' }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params, principal }) {
        const value = canonicalValue(params.value);
        await gw.policy.update(async () => {
          if (!(await gw.store.denylist.remove(value))) throw notFound(`"${value}" is not on the denylist.`);
          return { result: undefined, delta: { op: 'denylist.remove', values: [value] } };
        });
        await gw.audit('denylist.remove', { actor: principal.actor, target: value, before: value, after: null });
        return { status: 204 };
      },
    }),
  ];
}
