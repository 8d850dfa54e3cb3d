/**
 * `GET /admin/api/audit`: the audit log, newest first, filtered by action, actor,
 * target and time, paged by cursor.
 */
import * as z from 'zod';
import { defineRoute, type AdminDeps, type AdminRoute } from './route.ts';
import { AuditQuery } from './schemas.ts';

const Event = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string().optional(),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export function auditRoutes({ gw }: AdminDeps): AdminRoute[] {
  return [
    defineRoute({
      name: 'listAudit',
      method: 'get',
      path: '/audit',
      summary: 'Audit events, newest first',
      roles: ['admin'],
      query: AuditQuery,
      responses: { 200: { description: 'A page of events', schema: z.object({ items: z.array(Event), next: z.string().nullable() }) } },
      async handle({ query }) {
        return { body: await gw.store.audit.list(query) };
      },
    }),
  ];
}
