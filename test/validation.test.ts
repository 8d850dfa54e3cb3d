/**
 * The one zod-issues -> `details` mapper (policies/issues.ts, used by gateway/http/validation.ts
 * and by the policy parsers): unknown keys are named one by one, a refinement's own code
 * wins over zod's `custom`, paths are plain and prefixed where asked, and the route-edge
 * errors carry every problem.
 */
import test from 'ava';
import * as z from 'zod';
import { AppError } from '../gateway/http/errors.ts';
import { invalidRequest, issuesFromZod, parseOrThrow, prefixIssues, validationFailed } from '../gateway/http/validation.ts';

const Schema = z.strictObject({
  name: z.string().min(1),
  tags: z.array(z.string()),
  when: z.string().refine((s) => s.startsWith('20'), { message: 'a year, please', params: { code: 'not_a_year' } }),
  note: z.string().refine((s) => s !== 'x', { message: 'not x' }),
});

function problems(value: unknown) {
  const parsed = Schema.safeParse(value);
  if (parsed.success) throw new Error('expected a failure');
  return parsed.error;
}

test('each problem becomes { path, code, message }: unknown keys one by one, refinement codes kept', (t) => {
  const issues = issuesFromZod(problems({ name: '', tags: ['ok', 3], when: '1999', note: 'x', colour: 1, size: 2 }).issues);
  const byPath = new Map(issues.map((i) => [i.path.join('.'), i]));
  t.is(byPath.get('name')?.code, 'too_small');
  t.is(byPath.get('tags.1')?.code, 'invalid_type');
  t.deepEqual(byPath.get('tags.1')?.path, ['tags', 1], 'array indexes stay numbers');
  t.deepEqual(byPath.get('when'), { path: ['when'], code: 'not_a_year', message: 'a year, please' });
  t.is(byPath.get('note')?.code, 'custom', 'a refinement without its own code keeps zod\'s');
  t.deepEqual(byPath.get('colour'), { path: ['colour'], code: 'unrecognized_key', message: 'unknown key "colour"' });
  t.deepEqual(byPath.get('size'), { path: ['size'], code: 'unrecognized_key', message: 'unknown key "size"' });
  t.is(issues.length, 6);
});

test('a prefix goes in front of every path', (t) => {
  const issues = issuesFromZod(problems({ name: 'a', tags: [], when: '2024', note: 'x' }).issues, ['body', 0]);
  t.deepEqual(issues.map((i) => i.path), [['body', 0, 'note']]);
  t.deepEqual(prefixIssues(['entries'], [{ path: [3], code: 'invalid_email', message: 'm' }]), [{ path: ['entries', 3], code: 'invalid_email', message: 'm' }]);
});

test('validationFailed is a 422 that counts and lists every problem; invalidRequest a 400 under params or query', (t) => {
  const body = validationFailed(problems({ tags: [] }));
  t.true(body instanceof AppError);
  t.is(body.status, 422);
  t.is(body.code, 'validation_failed');
  t.is(body.message, 'The request body is not valid. 3 problems found.');
  t.is((body.details as unknown[]).length, 3);
  const one = validationFailed([{ path: ['x'], code: 'c', message: 'm' }], 'The company conflicts.');
  t.is(one.message, 'The company conflicts. 1 problem found.');

  const query = invalidRequest(problems({ name: 1, tags: [], when: '2024', note: '' }), 'query');
  t.is(query.status, 400);
  t.is(query.code, 'invalid_request');
  t.is(query.message, 'The request query string is not valid.');
  t.deepEqual((query.details as Array<{ path: unknown[] }>).map((d) => d.path), [['query', 'name']]);

  t.deepEqual(parseOrThrow(z.object({ id: z.string() }), { id: 'a' }, 'params'), { id: 'a' });
  const err = t.throws(() => parseOrThrow(z.object({ id: z.string() }), {}, 'params'), { instanceOf: AppError });
  t.is(err?.message, 'The request path is not valid.');
});
