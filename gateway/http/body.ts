/**
 * Body parsing at the edge: forms for pages, JSON for APIs, nothing else. A body of
 * another type (text/plain included: the classic cross-site "simple request") is
 * refused with 415 before any handler runs; a body over the size limit with 413
 * `body_too_large` (the limit named in the message); a malformed one with 400
 * `malformed_body`; a JSON body holding a key that could reach an object's prototype
 * (`__proto__`, `constructor`, `prototype`, at any depth) with 422 `forbidden_key`,
 * every such key listed with its path in `details`.
 * One exception, for file uploads (the console's logo form): `multipartBody`, bounded in
 * size, with the text fields in `ctx.request.body` (CSRF reads its token there) and the files by field.
 */
import { bodyParser } from '@koa/bodyparser';
import busboy from 'busboy';
import type { Context, Next } from 'koa';
import { AppError } from './errors.ts';

const LIMITS = { form: '64kb', json: '4mb' } as const;
const LIMIT_WORDS = { form: '64 KB', json: '4 MB' } as const;

/** Keys refused anywhere in a JSON body: merging them into an object could reach its prototype. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

type Path = (string | number)[];

/** Every forbidden key in a parsed JSON value, with its path (breadth-first, at most `max`). */
export function forbiddenKeyPaths(value: unknown, max = 20): Path[] {
  const found: Path[] = [];
  let level: Array<{ node: unknown; path: Path }> = [{ node: value, path: [] }];
  while (level.length > 0 && found.length < max) {
    const next: typeof level = [];
    for (const { node, path } of level) {
      if (typeof node !== 'object' || node === null) continue;
      if (Array.isArray(node)) {
        node.forEach((item, i) => next.push({ node: item, path: [...path, i] }));
        continue;
      }
      for (const key of Object.keys(node)) {
        if (FORBIDDEN_KEYS.has(key)) found.push([...path, key]);
        else next.push({ node: (node as Record<string, unknown>)[key], path: [...path, key] });
      }
    }
    level = next;
  }
  return found.slice(0, max);
}

function forbiddenKeyError(paths: Path[]): AppError {
  const names = [...new Set(paths.map((p) => String(p.at(-1))))].map((k) => `"${k}"`).join(', ');
  return new AppError('forbidden_key', 422, `The request body uses the key ${names}, which is not allowed anywhere in a request. Remove it and send again.`, {
    details: paths.map((path) => ({ path, code: 'forbidden_key', message: `the key "${String(path.at(-1))}" is not allowed` })),
  });
}

/** JSON.parse keeps `__proto__` as an own data property: safe to scan, never merged. */
function reparse(raw: unknown): unknown {
  if (typeof raw !== 'string') return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function parser(type: 'form' | 'json') {
  return bodyParser({
    enableTypes: [type],
    formLimit: LIMITS.form,
    jsonLimit: LIMITS.json,
    jsonStrict: true,
    onError(err: Error & { status?: number; type?: string; body?: unknown }, _ctx: Context) {
      if (err.status === 413 || err.type === 'entity.too.large') {
        throw new AppError('body_too_large', 413, `The request body is larger than ${LIMIT_WORDS[type]}, the most this ${type === 'json' ? 'API' : 'form'} accepts.${type === 'json' ? ' Send large lists in several requests.' : ''}`);
      }
      if (type === 'json') {
        // co-body refuses `__proto__` as a syntax error: name the key instead.
        const paths = forbiddenKeyPaths(reparse(err.body));
        if (paths.length > 0) throw forbiddenKeyError(paths);
      }
      throw new AppError('malformed_body', 400, type === 'json' ? 'The request body is not valid JSON.' : 'The form could not be read.');
    },
  });
}

const form = parser('form');
const json = parser('json');

export async function formBody(ctx: Context, next: Next): Promise<void> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new AppError('unsupported_media_type', 415, 'Send this form as application/x-www-form-urlencoded.');
  }
  await form(ctx, next);
}

async function refuseForbiddenKeys(ctx: Context, next: Next): Promise<void> {
  const paths = forbiddenKeyPaths((ctx.request as { body?: unknown }).body);
  if (paths.length > 0) throw forbiddenKeyError(paths);
  await next();
}

export async function jsonBody(ctx: Context, next: Next): Promise<void> {
  if (ctx.request.length === 0 || (!ctx.request.length && !ctx.get('transfer-encoding'))) {
    (ctx.request as { body?: unknown }).body = undefined;
    return next();
  }
  if (!ctx.is('application/json')) {
    throw new AppError('unsupported_media_type', 415, 'Send the body as application/json.');
  }
  await json(ctx, () => refuseForbiddenKeys(ctx, next));
}

/** Uploaded files of a multipart form, by field name (set by `multipartBody`). */
export type UploadedFiles = Record<string, { data: Buffer; filename: string; mimeType: string }>;

export function uploadedFiles(ctx: Context): UploadedFiles {
  return ((ctx.request as { files?: UploadedFiles }).files ?? {});
}

/**
 * multipart/form-data with at most `maxFileBytes` per file (one file per field, 2 files,
 * 20 text fields): 413 `file_too_large` past the limit, 415 for another body type.
 */
export function multipartBody(maxFileBytes: number) {
  return async function parseMultipart(ctx: Context, next: Next): Promise<void> {
    if (!ctx.is('multipart/form-data')) throw new AppError('unsupported_media_type', 415, 'Send this form as multipart/form-data.');
    const fields: Record<string, string> = {};
    const files: UploadedFiles = {};
    await new Promise<void>((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({ headers: ctx.req.headers, limits: { fileSize: maxFileBytes, files: 2, fields: 20, fieldSize: 64 * 1024 } });
      } catch {
        reject(new AppError('malformed_body', 400, 'The form could not be read.'));
        return;
      }
      parser.on('field', (name, value) => {
        fields[name] = value;
      });
      parser.on('file', (name, stream, info) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('limit', () => reject(new AppError('file_too_large', 413, `The file must be at most ${Math.floor(maxFileBytes / 1024)} KiB.`)));
        stream.on('end', () => {
          if (chunks.length > 0) files[name] = { data: Buffer.concat(chunks), filename: info.filename ?? '', mimeType: info.mimeType };
        });
      });
      parser.on('error', () => reject(new AppError('malformed_body', 400, 'The form could not be read.')));
      parser.on('close', () => resolve());
      ctx.req.pipe(parser);
    });
    (ctx.request as { body?: unknown }).body = fields;
    (ctx.request as { files?: UploadedFiles }).files = files;
    await next();
  };
}
