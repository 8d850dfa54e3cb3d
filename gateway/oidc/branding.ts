/**
 * How a portal looks to its customers (issue 15): display name, logo, primary colour,
 * support address and legal links, per client, with the deployment's own branding for
 * pages reached without a client. This module holds the rules an admin's input must
 * pass (zod at the edge) and the two checks that are not mere syntax:
 *
 *   contrastRatio('#1d4ed8', '#ffffff')   // 6.7: AA for normal text needs 4.5
 *   await inspectLogo(bytes)              // { ok: true, contentType: 'image/png', ... } or a reason
 *
 * Colour: the pages use it as the background of buttons under white text and as the
 * colour of links on white, so it must reach WCAG 2.x AA for normal text (4.5:1) against
 * white; both uses are the same pair, so one ratio decides. It reaches the pages through
 * a stylesheet Gatehouse serves per client (/branding/<client>.css, gateway/portal/branding.ts):
 * the page CSP stays `style-src 'self'`, with no inline style and no nonce to thread
 * through every template, and the sheet is cached by its content hash.
 *
 * Logo: PNG, JPEG or WebP, sniffed from the bytes (never the uploader's word), at most
 * 256 KiB and 2048 px a side. SVG is refused: it is a document that can carry script and
 * external references, and a logo does not need that risk.
 */
import { createHash } from 'node:crypto';
import type { imageSize } from 'image-size';
import * as z from 'zod';
import type { PortalBranding } from '../../adapters/store.ts';
import type { Brand } from '../http/page-context.ts';

/** WCAG 2.x AA for normal text. */
export const MIN_CONTRAST = 4.5;
export const LOGO_MAX_BYTES = 256 * 1024;
export const LOGO_MAX_SIDE = 2048;
const LOGO_TYPES: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp' };

/** sRGB channel (0-255) to linear light, per WCAG 2.x relative luminance. */
function linear(channel: number): number {
  const c = channel / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

function luminance(hex: string): number {
  const n = Number.parseInt(hex.slice(1), 16);
  return 0.2126 * linear((n >> 16) & 255) + 0.7152 * linear((n >> 8) & 255) + 0.0722 * linear(n & 255);
}

/** WCAG contrast ratio of two `#rrggbb` colours, 1 to 21. */
export function contrastRatio(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

const hexColour = z
  .string()
  .regex(/^#[0-9a-fA-F]{6}$/, 'must be a colour like #1d4ed8')
  .transform((v) => v.toLowerCase())
  .refine((v) => contrastRatio(v, '#ffffff') >= MIN_CONTRAST, {
    message: `must contrast at least ${MIN_CONTRAST}:1 with white (WCAG AA): pages put white text on it and use it for links on white; choose a darker shade`,
  });

const httpsOrLocalUrl = z
  .url()
  .max(2048)
  .refine((v) => /^https:\/\//.test(v) || /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?\//.test(v), { message: 'must be an https URL' });

/** Branding as admins send it (the logo is uploaded on its own route). Empty strings clear a field. */
export const BrandingInput = z.strictObject({
  displayName: z.string().trim().max(100).optional(),
  primaryColor: z.union([z.literal(''), hexColour]).optional(),
  supportEmail: z.union([z.literal(''), z.email().max(320)]).optional(),
  privacyUrl: z.union([z.literal(''), httpsOrLocalUrl]).optional(),
  termsUrl: z.union([z.literal(''), httpsOrLocalUrl]).optional(),
});
export type BrandingInput = z.output<typeof BrandingInput>;

/** The branding as stored and returned (what BrandingInput became, plus the logo reference). */
export const BrandingView = z.object({
  displayName: z.string().optional(),
  primaryColor: z.string().optional(),
  supportEmail: z.string().optional(),
  privacyUrl: z.string().optional(),
  termsUrl: z.string().optional(),
  logo: z.object({ sha256: z.string(), contentType: z.string() }).optional(),
});

/** Applies an input over stored branding: given fields replace, empty strings remove, the logo stays. */
export function mergeBranding(current: PortalBranding, input: BrandingInput): PortalBranding {
  const next: PortalBranding = { ...current };
  for (const key of ['displayName', 'primaryColor', 'supportEmail', 'privacyUrl', 'termsUrl'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    if (value === '') delete next[key];
    else next[key] = value;
  }
  return next;
}

export type LogoInspection =
  | { ok: true; contentType: string; sha256: string; width: number; height: number }
  | { ok: false; code: 'logo_too_large' | 'logo_type' | 'logo_dimensions'; message: string };

/** image-size (26 modules, one per image format), loaded by the first logo upload rather than by every start. */
let sizer: Promise<typeof imageSize> | null = null;
const loadImageSize = () => (sizer ??= import('image-size').then((m) => m.imageSize));

/** Checks an uploaded logo by its bytes: type (PNG, JPEG, WebP), size and dimensions. */
export async function inspectLogo(data: Uint8Array): Promise<LogoInspection> {
  if (data.byteLength > LOGO_MAX_BYTES) return { ok: false, code: 'logo_too_large', message: `The logo must be at most ${LOGO_MAX_BYTES / 1024} KiB.` };
  const imageSize = await loadImageSize();
  let size: ReturnType<typeof imageSize>;
  try {
    size = imageSize(data);
  } catch {
    return { ok: false, code: 'logo_type', message: 'The logo must be a PNG, JPEG or WebP image.' };
  }
  const contentType = size.type ? LOGO_TYPES[size.type] : undefined;
  if (!contentType) return { ok: false, code: 'logo_type', message: 'The logo must be a PNG, JPEG or WebP image (SVG is not accepted).' };
  if (!size.width || !size.height || size.width > LOGO_MAX_SIDE || size.height > LOGO_MAX_SIDE) {
    return { ok: false, code: 'logo_dimensions', message: `The logo must be at most ${LOGO_MAX_SIDE} pixels wide and high.` };
  }
  return { ok: true, contentType, sha256: createHash('sha256').update(data).digest('hex'), width: size.width, height: size.height };
}

/** The settings key of the deployment's own branding (pages without a client). */
export const DEPLOYMENT_BRANDING_KEY = 'branding.deployment';
/** The LogoStore owner of a client's logo, and of the deployment's. */
export const logoOwner = (clientId: string | null) => (clientId === null ? 'deployment' : `client:${clientId}`);

/** The stylesheet that carries a primary colour to the pages (app.css reads `--accent`). */
export function brandStylesheet(primaryColor: string): string {
  return [
    '/* Gatehouse portal branding: the primary colour, checked against WCAG AA before it was saved. */',
    `:root { --accent: ${primaryColor}; }`,
    // On a dark page a dark brand colour would be unreadable as text: links keep the system colour there.
    '@media (prefers-color-scheme: dark) { button.link { color: LinkText; } }',
    '',
  ].join('\n');
}

/** A short content version for cache-busting URLs. */
export const contentVersion = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

/**
 * What a page shows for this client: each field from the portal's branding, else the
 * deployment's; the name falls back to the client's own name, then `fallbackName`.
 */
export function resolveBrand(
  clientId: string | null,
  portal: { branding: PortalBranding; clientName?: string } | undefined,
  deployment: PortalBranding,
  fallbackName: string,
): Brand {
  const own = portal?.branding ?? {};
  const pick = <K extends keyof PortalBranding>(key: K): PortalBranding[K] => own[key] ?? deployment[key];
  const known = portal !== undefined && clientId !== null;
  const colour = pick('primaryColor');
  const colourOwner = own.primaryColor && known ? `/branding/client/${encodeURIComponent(clientId)}` : '/branding';
  const logoOwnerPath = own.logo && known ? `/branding/client/${encodeURIComponent(clientId)}` : '/branding';
  const logo = pick('logo');
  return {
    clientId: known ? clientId : null,
    name: own.displayName || (known ? portal.clientName : undefined) || deployment.displayName || fallbackName,
    logoUrl: logo ? `${logoOwnerPath}/logo?v=${logo.sha256.slice(0, 16)}` : null,
    stylesheet: colour ? `${colourOwner}/style.css?v=${contentVersion(brandStylesheet(colour))}` : null,
    supportEmail: pick('supportEmail') ?? null,
    privacyUrl: pick('privacyUrl') ?? null,
    termsUrl: pick('termsUrl') ?? null,
  };
}
