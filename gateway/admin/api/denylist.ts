/**
 * The denylist: full addresses and domains nobody may sign up with (agents need an
 * admin override). `POST` takes one entry or tens of thousands in one request (parsed
 * and canonicalised by the policy engine, written in one bulk store call whose unique
 * index drops duplicates, applied to every process's snapshot as one delta); `GET` searches
 * and pages; `DELETE /:value` takes the URL-encoded address or domain.
 *
 * A pasted batch is checked as a whole and EVERY problem is listed, each with its
 * 1-based `line` (the entry's position): malformed entries (errors: nothing is added
 * while there is one), and, as warnings, repeats within the batch, entries already on
 * the list, addresses already covered by a denied domain, and domains a company
 * accepts (the denylist would win over the company).
 */
import * as z from 'zod';
import { labelSuffixes, parseDenylistEntries, type Company, type DenylistEntry, type DenylistValue, type ParseResult, type Snapshot } from '../../../policies/index.ts';
import { notFound } from '../../http/errors.ts';
import { issuesFromZod } from '../../http/validation.ts';
import { defineRoute, type AdminDeps, type AdminRoute, type BodySpec } from './route.ts';
import { adminValidationFailed, consoleHref, type Detail } from './wording.ts';
import { DenylistBody, DenylistQuery, DenylistValueParams, ErrorBody, Warnings } from './schemas.ts';

const Entry = z.object({ value: z.string(), kind: z.enum(['email', 'domain']), createdAt: z.string(), createdBy: z.string(), note: z.string().optional() });

type RawEntries = z.output<typeof DenylistBody>['entries'];

/** Structure by zod here; each entry is checked by the handler, against the batch and the live lists. */
function parseDenylistBody(raw: unknown): ParseResult<RawEntries> {
  const shape = DenylistBody.safeParse(raw);
  if (!shape.success) return { ok: false, issues: issuesFromZod(shape.error.issues) };
  return { ok: true, value: shape.data.entries };
}

export const denylistBody: BodySpec<RawEntries, unknown> = {
  schema: DenylistBody,
  parse: parseDenylistBody,
  labels: 'denylist',
  example: { entries: ['spammer@example.com', '*.throwaway.example', { value: 'junk.example', note: 'abuse report #12' }] },
};

const shown = (item: RawEntries[number]) => (typeof item === 'string' ? item : item.value).trim().slice(0, 200);

/**
 * Every problem of a batch, each with its line: malformed entries are errors, the rest
 * warnings. `values` are the entries to add (canonical, first occurrence of each).
 */
export function checkBatch(items: RawEntries, snapshot: Snapshot): { values: DenylistValue[]; problems: Detail[] } {
  const problems: Detail[] = [];
  const values: DenylistValue[] = [];
  const firstLine = new Map<string, number>();
  const batchDomains = new Map<string, number>();
  const parsed = items.map((item) => parseDenylistEntries([item]));
  const at = (index: number, code: string, message: string, severity: 'error' | 'warning'): Detail => ({
    path: ['entries', index], code, line: index + 1, label: `Line ${index + 1}`, message: `Line ${index + 1}: ${message}`, severity, href: consoleHref.denylist,
  });
  // Accepted domains by each of their parent domains, built once, only when the batch has domains.
  let under: Map<string, Array<[string, Company]>> | null = null;
  const acceptedUnder = () => {
    if (under) return under;
    under = new Map();
    for (const [accepted, company] of snapshot.companyByDomain) {
      for (const suffix of labelSuffixes(accepted)) {
        const list = under.get(suffix) ?? [];
        list.push([accepted, company]);
        under.set(suffix, list);
      }
    }
    return under;
  };
  parsed.forEach((result, index) => {
    if (result.ok && result.value[0]?.kind === 'domain') batchDomains.set(result.value[0].value, batchDomains.get(result.value[0].value) ?? index);
  });
  parsed.forEach((result, index) => {
    if (!result.ok) {
      for (const issue of result.issues) problems.push(at(index, issue.code, `"${shown(items[index]!)}" is ${issue.message.replace(/^expected/, 'not')}`, 'error'));
      return;
    }
    const entry = result.value[0]!;
    const key = `${entry.kind}:${entry.value}`;
    const seen = firstLine.get(key);
    if (seen !== undefined) {
      problems.push(at(index, 'duplicate_entry', `${entry.value} repeats line ${seen + 1}; it is added once`, 'warning'));
      return;
    }
    firstLine.set(key, index);
    values.push(entry);
    if ((entry.kind === 'email' ? snapshot.deniedEmails : snapshot.deniedDomains).has(entry.value)) {
      problems.push(at(index, 'already_denylisted', `${entry.value} is already on the denylist`, 'warning'));
      return;
    }
    const domain = entry.kind === 'email' ? entry.value.slice(entry.value.lastIndexOf('@') + 1) : entry.value;
    const parents = entry.kind === 'email' ? labelSuffixes(domain) : labelSuffixes(domain).slice(1);
    const listed = parents.find((d) => snapshot.deniedDomains.has(d));
    const inBatch = parents.find((d) => batchDomains.has(d));
    if (listed !== undefined) problems.push(at(index, 'covered_by_domain', `${entry.value} is already refused: the domain ${listed} is on the denylist`, 'warning'));
    else if (inBatch !== undefined) problems.push(at(index, 'covered_by_domain', `${entry.value} is already refused by line ${batchDomains.get(inBatch)! + 1} (${inBatch})`, 'warning'));
    if (entry.kind === 'domain') {
      for (const [accepted, company] of acceptedUnder().get(entry.value) ?? []) {
        problems.push({ ...at(index, 'denylisted_accepted_domain', `${entry.value} would refuse ${accepted}, an accepted domain of company '${company.name}': its people could no longer sign up (the denylist wins over the company)`, 'warning'), href: consoleHref.company(company.id) });
      }
    }
  });
  return { values, problems };
}

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
        200: { description: 'How many were new, and warnings with their `line`: repeats, entries already listed or covered by a denied domain, domains a company accepts', schema: z.object({ received: z.number(), added: z.number(), warnings: Warnings }) },
        422: { description: 'validation_failed: nothing added; `details` lists EVERY problem of the batch with its 1-based `line` (malformed entries with severity `error`, the warnings above with severity `warning`)', schema: ErrorBody },
      },
      async handle({ body: items, principal }) {
        const { values, problems } = checkBatch(items, gw.policy.current());
        if (problems.some((p) => p.severity === 'error')) {
          const bad = problems.filter((p) => p.severity === 'error').length;
          throw adminValidationFailed(problems, `${bad} of ${items.length} entr${items.length === 1 ? 'y is' : 'ies are'} not valid and nothing was added.`);
        }
        const now = new Date();
        const entries: DenylistEntry[] = values.map((v) => ({ ...v, createdAt: now, createdBy: principal.actor }));
        const added = await gw.policy.update(async () => ({
          result: await gw.store.denylist.add(entries),
          delta: { op: 'denylist.add', entries: values.map(({ value, kind }) => ({ value, kind })) },
        }));
        await gw.audit('denylist.add', { actor: principal.actor, target: values.length === 1 ? values[0]!.value : `${values.length} entries`, before: null, after: values.map((v) => v.value), data: { received: values.length, added } });
        return { body: { received: items.length, added, warnings: problems } };
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
