/**
 * Services and companies: CRUD on the policy's own resources. Every write is parsed by
 * the policy engine (parseService / parseCompany: canonical domains, every problem with
 * its path), checked against the whole configuration (a service that takes requests from
 * anyone needs self-registration on, one for existing accounts needs it off; a domain is
 * claimed by one company only) against the live snapshot, written under the
 * configuration lock, applied to every process's snapshot as a delta, and audited with
 * before/after.
 *
 * Concurrent edits: `GET /:id` answers an `ETag` (a hash of the stored object); a `PUT`
 * with `If-Match` is refused with 409 `version_conflict` when the object changed since
 * (the console keeps the admin's edits and shows what changed). `GET /:id/usage` says
 * what a delete would touch: the customers, and for a service the portals (OIDC
 * clients) bound to it, the companies granting it and whether it is a default service.
 * `GET /companies?search=&limit=&cursor=` pages companies by name.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { CompanySchema, parseCompany, parseService, ServiceSchema, type Company, type Configuration, type ParseResult, type PolicyDelta, type Service, type Snapshot } from '../../../policies/index.ts';
import { StoreConflictError } from '../../../adapters/store.ts';
import { AppError, notFound } from '../../http/errors.ts';
import { checkChange } from './configuration.ts';
import { defineRoute, type AdminDeps, type AdminRoute, type BodySpec } from './route.ts';
import { adminValidationFailed } from './wording.ts';
import { CompanyListQuery, customerView, CustomerView, ErrorBody, IdParams, issue, PageQuery, Warnings } from './schemas.ts';

/** The entity tag of a stored company or service: changes whenever any field does. */
export function etagOf(item: unknown): string {
  return `"${createHash('sha256').update(JSON.stringify(item)).digest('base64url').slice(0, 22)}"`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** PUT /x/:id: the id comes from the path; a different id in the body is refused. */
function withPathId<T>(parse: (raw: unknown) => ParseResult<T>) {
  return (raw: unknown, params: { id: string }): ParseResult<T> => {
    if (isRecord(raw) && raw.id !== undefined && raw.id !== params.id) {
      return { ok: false, issues: [issue(['id'], 'id_mismatch', `the body's id must be "${params.id}" (the id in the path) or absent`)] };
    }
    return parse(isRecord(raw) ? { ...raw, id: params.id } : raw);
  };
}

type Kind = 'services' | 'companies';
type Item<K extends Kind> = K extends 'services' ? Service : Company;

interface ResourceSpec<K extends Kind> {
  kind: K;
  singular: 'service' | 'company';
  /** PascalCase for operation ids. */
  title: 'Service' | 'Company';
  schema: z.ZodObject;
  parse: (raw: unknown) => ParseResult<Item<K>>;
  example: Record<string, unknown>;
  /** For PUT /:id (no id: it comes from the path). */
  putExample: Record<string, unknown>;
  store: (deps: AdminDeps) => {
    list(): Promise<Item<K>[]>;
    get(id: string): Promise<Item<K> | null>;
    create(item: Item<K>): Promise<Item<K>>;
    replace(item: Item<K>): Promise<Item<K> | null>;
    delete(id: string): Promise<boolean>;
  };
  conflictCode: 'service_exists' | 'company_exists';
}

/** The configuration with `item` put in place of its namesake (or appended) or removed. */
function withItem<K extends Kind>(kind: K, c: Configuration, id: string, item: Item<K> | null): Configuration {
  const list = [...(c[kind] as readonly Item<K>[])];
  const index = list.findIndex((x) => x.id === id);
  if (item === null) {
    if (index >= 0) list.splice(index, 1);
  } else if (index >= 0) list[index] = item;
  else list.push(item);
  return { ...c, [kind]: list };
}

function focusOn(kind: Kind, id: string) {
  return (after: Configuration) => {
    const index = (after[kind] as readonly { id: string }[]).findIndex((x) => x.id === id);
    return index >= 0 ? [kind, index] : null;
  };
}

function crudRoutes<K extends Kind>(deps: AdminDeps, spec: ResourceSpec<K>): AdminRoute[] {
  const { gw } = deps;
  const store = spec.store(deps);
  const base = `/${spec.kind}`;
  const labels = spec.singular;
  const body: BodySpec<Item<K>, unknown> = { schema: spec.schema, parse: spec.parse, example: spec.example, labels };
  const putBody: BodySpec<Item<K>, { id: string }> = { schema: spec.schema.partial({ id: true }), parse: withPathId(spec.parse), example: spec.putExample, labels };

  function checked(snapshot: Snapshot, id: string, item: Item<K> | null) {
    const report = checkChange(snapshot, (c) => withItem(spec.kind, c, id, item), focusOn(spec.kind, id));
    if (report.errors.length > 0) throw adminValidationFailed(report.errors);
    return report;
  }

  /** What every process applies to its snapshot after a write of this kind. */
  const put = (item: Item<K>): PolicyDelta =>
    spec.kind === 'companies' ? { op: 'company.put', company: item as Company } : { op: 'service.put', service: item as Service };
  const removal = (id: string): PolicyDelta => ({ op: spec.kind === 'companies' ? 'company.delete' : 'service.delete', id });

  async function existing(id: string): Promise<Item<K>> {
    const found = await store.get(id);
    if (!found) throw notFound(`No ${spec.singular} "${id}".`);
    return found;
  }

  const ItemResponse = z.object({ [spec.singular]: spec.schema, warnings: Warnings });
  const paged = spec.kind === 'companies';

  return [
    defineRoute({
      name: `list${spec.title === 'Company' ? 'Companies' : 'Services'}`,
      method: 'get',
      path: base,
      summary: paged ? 'Every company, or with `search`, `limit` or `cursor` a page of companies sorted by name (searched by name, id or accepted domain)' : `Every ${spec.singular}`,
      roles: ['admin'],
      ...(paged ? { query: CompanyListQuery } : {}),
      responses: { 200: { description: `The ${spec.kind}${paged ? '; `next` is the cursor of the next page (null: the last)' : ''}`, schema: z.object({ items: z.array(spec.schema), ...(paged ? { next: z.string().nullable() } : {}) }) } },
      async handle({ query }) {
        const q = (query ?? {}) as z.output<typeof CompanyListQuery>;
        if (paged && (q.search !== undefined || q.limit !== undefined || q.cursor !== undefined)) {
          const page = await deps.gw.store.companies.page({ search: q.search, limit: q.limit ?? 50, cursor: q.cursor });
          return { body: page };
        }
        return { body: { items: await store.list(), ...(paged ? { next: null } : {}) } };
      },
    }),
    defineRoute({
      name: `create${spec.title}`,
      method: 'post',
      path: base,
      summary: `Create a ${spec.singular}`,
      roles: ['admin'],
      recentAuth: true,
      body,
      responses: {
        201: { description: `Created: the ${spec.singular} as saved (canonical) and warnings`, schema: ItemResponse },
        409: { description: `${spec.conflictCode}: the id is taken`, schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ body: item, principal }) {
        const { created, report } = await gw.policy.update(async (snapshot) => {
          const report = checked(snapshot, item.id, item);
          let created: Item<K>;
          try {
            created = await store.create(item);
          } catch (err) {
            if (err instanceof StoreConflictError) throw new AppError(spec.conflictCode, 409, `A ${spec.singular} with id "${item.id}" already exists.`);
            throw err;
          }
          return { result: { created, report }, delta: put(created) };
        });
        await gw.audit(`${spec.singular}.create`, { actor: principal.actor, target: item.id, before: null, after: created });
        return { status: 201, body: { [spec.singular]: created, warnings: report.warnings } };
      },
    }),
    defineRoute({
      name: `get${spec.title}`,
      method: 'get',
      path: `${base}/:id`,
      summary: `One ${spec.singular}`,
      roles: ['admin'],
      params: IdParams,
      responses: { 200: { description: `The ${spec.singular}, with an ETag for If-Match`, schema: spec.schema }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params, koa }) {
        const item = await existing(params.id);
        koa.set('ETag', etagOf(item));
        return { body: item };
      },
    }),
    defineRoute({
      name: `replace${spec.title}`,
      method: 'put',
      path: `${base}/:id`,
      summary: `Replace a ${spec.singular} (the id comes from the path)`,
      roles: ['admin'],
      recentAuth: true,
      params: IdParams,
      body: putBody,
      responses: {
        200: { description: `Saved: the ${spec.singular} and warnings`, schema: ItemResponse },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: `version_conflict: the ${spec.singular} changed since it was read (the If-Match ETag no longer matches)`, schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ params, body: item, principal, koa }) {
        const before = await existing(params.id);
        const ifMatch = koa.get('if-match');
        if (ifMatch && ifMatch !== '*' && !ifMatch.split(',').map((s) => s.trim()).includes(etagOf(before))) {
          throw new AppError('version_conflict', 409, `${spec.title} '${before.name}' was changed by someone else since you opened it. Review what changed and save again.`);
        }
        const { saved, report } = await gw.policy.update(async (snapshot) => {
          const report = checked(snapshot, params.id, item);
          const saved = await store.replace(item);
          if (!saved) throw notFound(`No ${spec.singular} "${params.id}".`);
          return { result: { saved, report }, delta: put(saved) };
        });
        await gw.audit(`${spec.singular}.update`, { actor: principal.actor, target: params.id, before, after: saved });
        koa.set('ETag', etagOf(saved));
        return { body: { [spec.singular]: saved, warnings: report.warnings } };
      },
    }),
    defineRoute({
      name: `delete${spec.title}`,
      method: 'delete',
      path: `${base}/:id`,
      summary: `Delete a ${spec.singular}`,
      roles: ['admin'],
      recentAuth: true,
      params: IdParams,
      responses: {
        200: { description: 'Deleted, with warnings (e.g. references left dangling)', schema: z.object({ deleted: z.string(), warnings: Warnings }) },
        404: { description: 'not_found', schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ params, principal }) {
        const before = await existing(params.id);
        const report = await gw.policy.update(async (snapshot) => {
          const report = checked(snapshot, params.id, null);
          if (!(await store.delete(params.id))) throw notFound(`No ${spec.singular} "${params.id}".`);
          return { result: report, delta: removal(params.id) };
        });
        const data = spec.kind === 'companies' ? { detachedCustomers: await detachEmployees(deps, params.id) } : undefined;
        await gw.audit(`${spec.singular}.delete`, { actor: principal.actor, target: params.id, before, after: null, data });
        return { body: { deleted: params.id, warnings: report.warnings } };
      },
    }),
  ];
}

/** A deleted company's employees stay customers, without a company. */
async function detachEmployees(deps: AdminDeps, companyId: string): Promise<number> {
  let detached = 0;
  for (;;) {
    const page = await deps.gw.store.customers.list({ companyId, limit: 500 });
    for (const customer of page.items) {
      await deps.gw.store.customers.update(customer.id, { companyId: null });
      detached += 1;
    }
    if (page.items.length === 0 || !page.next) return detached;
  }
}

const Named = z.object({ id: z.string(), name: z.string() });

export function serviceRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw } = deps;
  return [...crudRoutes(deps, {
    kind: 'services',
    singular: 'service',
    title: 'Service',
    schema: ServiceSchema,
    parse: parseService,
    example: { id: 'it-help', name: 'IT help desk', requestAccess: 'granted' },
    putExample: { name: 'IT help desk (EU)', requestAccess: 'granted' },
    store: ({ gw: g }) => g.store.services,
    conflictCode: 'service_exists',
  }),
  defineRoute({
    name: 'getServiceUsage',
    method: 'get',
    path: '/services/:id/usage',
    summary: 'What refers to a service: the portals (OIDC clients) bound to it, the companies granting it, whether it is a default service, how many customers hold it',
    roles: ['admin'],
    params: IdParams,
    responses: {
      200: { description: 'What a delete would leave dangling', schema: z.object({ clients: z.array(Named), companies: z.array(Named), defaultService: z.boolean(), customers: z.number().int() }) },
      404: { description: 'not_found', schema: ErrorBody },
    },
    async handle({ params }) {
      if (!(await gw.store.services.get(params.id))) throw notFound(`No service "${params.id}".`);
      const snapshot = gw.policy.current();
      // Portal clients live in the store now (the registry's copy): those bound to this service.
      const clients = gw.clients.list()
        .filter((c) => c.metadata.service === params.id)
        .map((c) => ({ id: c.id, name: String(c.metadata.client_name ?? c.id) }));
      const companies = [...snapshot.companiesById.values()].filter((c) => c.services.includes(params.id)).map((c) => ({ id: c.id, name: c.name }));
      const customers = await gw.store.customers.count({ service: params.id });
      return { body: { clients, companies, defaultService: snapshot.policy.anyone.defaultServices.includes(params.id), customers } };
    },
  })];
}

export function companyRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw } = deps;
  return [
    ...crudRoutes(deps, {
      kind: 'companies',
      singular: 'company',
      title: 'Company',
      schema: CompanySchema,
      parse: parseCompany,
      example: { id: 'acme', name: 'Acme Corp', acceptedDomains: ['acme.example'], selfRegistration: { permitted: true } },
      putExample: { name: 'Acme Europe', acceptedDomains: ['acme-eu.example'], services: [] },
      store: ({ gw: g }) => g.store.companies,
      conflictCode: 'company_exists',
    }),
    defineRoute({
      name: 'getCompanyUsage',
      method: 'get',
      path: '/companies/:id/usage',
      summary: "How many customers are the company's employees (a delete leaves them without a company)",
      roles: ['admin'],
      params: IdParams,
      responses: { 200: { description: 'Employees', schema: z.object({ customers: z.number().int() }) }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params }) {
        if (!(await gw.store.companies.get(params.id))) throw notFound(`No company "${params.id}".`);
        return { body: { customers: await gw.store.customers.count({ companyId: params.id }) } };
      },
    }),
    defineRoute({
      name: 'listCompanyCustomers',
      method: 'get',
      path: '/companies/:id/customers',
      summary: "The company's employees (customers whose company it is)",
      roles: ['admin'],
      params: IdParams,
      query: PageQuery,
      responses: {
        200: { description: 'A page of customers', schema: z.object({ items: z.array(CustomerView), next: z.string().nullable() }) },
        404: { description: 'not_found', schema: ErrorBody },
      },
      async handle({ params, query }) {
        if (!(await gw.store.companies.get(params.id))) throw notFound(`No company "${params.id}".`);
        const page = await gw.store.customers.list({ companyId: params.id, limit: query.limit, cursor: query.cursor });
        return { body: { items: page.items.map(customerView), next: page.next } };
      },
    }),
  ];
}
