/**
 * The denylist: full addresses and domains nobody may sign up with. Searched and paged
 * by the API; entries pasted many at once (one per line, or comma-separated) and
 * removed one by one. Every problem of a pasted batch is shown with the line of the
 * text area it is on.
 *
 *   GET  /admin/denylist?search=&offset=   a page of entries
 *   POST /admin/denylist                   add entries (POST /admin/api/denylist), then 303 back
 *   POST /admin/denylist/remove            remove one (DELETE /admin/api/denylist/:value), then 303 back
 */
import type { Context } from 'koa';
import type { ApiReply } from './api-client.ts';
import { afterWrite, formOf, queryValue, RESTORED_NOTICE, type PageData, type PageGroup } from './page.ts';

const PAGE_SIZE = '50';

/** The text area's entries, each with the line it is on (several on a line when comma-separated). */
export function pastedEntries(text: string): Array<{ value: string; line: number }> {
  return text.split(/\r?\n/).flatMap((row, i) => row.split(',').map((v) => ({ value: v.trim(), line: i + 1 }))).filter((e) => e.value !== '');
}

/** The API's entry positions -> the text area's lines. */
function onTextLines(reply: ApiReply, lines: number[]): Array<{ message: string; severity?: string }> {
  return (reply.body.details ?? (reply.body.warnings as ApiReply['body']['details']) ?? []).map((d) => {
    const line = d.line ? lines[d.line - 1] : undefined;
    return { message: line ? d.message.replace(/^Line \d+:/, `Line ${line}:`) : d.message, severity: d.severity, ...(d.href && !d.href.startsWith('/admin/denylist') ? { href: d.href } : {}) };
  });
}

export const denylistPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const search = queryValue(c, 'search');
    const offset = Math.max(0, Number(queryValue(c, 'offset')) || 0);
    const entries = await kit.api.read(c, '/denylist', { search, offset: String(offset), limit: PAGE_SIZE });
    kit.render(c, 'denylist', 'Denylist', { page: entries, search, offset, ...extra }, status);
  }

  router.get('/denylist', async (c) => {
    const restored = await kit.restored(c);
    return page(c, restored ? { draft: String(restored.entries ?? ''), notice: RESTORED_NOTICE } : {});
  });

  router.post('/denylist', ...kit.form, async (c) => {
    const text = String(formOf(c).entries ?? '');
    const pasted = pastedEntries(text);
    if (pasted.length === 0) return page(c, { draft: text, error: 'Paste at least one address or domain.', errors: { entries: 'Paste at least one address or domain.' } }, 422);
    const reply = await kit.api.call(c, 'POST', '/denylist', { entries: pasted.map((e) => e.value) });
    const problems = onTextLines(reply, pasted.map((e) => e.line));
    if (reply.status === 200) return kit.done(c, '/admin/denylist', `${String(reply.body.added)} of ${String(reply.body.received)} entries added.`, problems);
    const shown = afterWrite(reply, [200], '', { draft: text });
    return page(c, { ...shown.data, problems, error: `${problems.filter((p) => p.severity === 'error').length || 'Some'} line(s) cannot be added, so nothing was added. Fix the lines below and add again.` }, shown.status);
  });

  router.post('/denylist/remove', ...kit.form, async (c) => {
    const value = String(formOf(c).value ?? '');
    const reply = await kit.api.call(c, 'DELETE', `/denylist/${encodeURIComponent(value)}`);
    if (reply.status === 204) return kit.done(c, '/admin/denylist', `${value} removed.`);
    const shown = afterWrite(reply, [204], '', { fallback: 'Not removed.' });
    return page(c, shown.data, shown.status);
  });
};
