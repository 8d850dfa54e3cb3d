/**
 * TLS in front of a test gateway, the way deployers run it: a TLS-terminating reverse
 * proxy (here a tiny node:https one) that sets X-Forwarded-Proto/-For, and the gateway with
 * ISSUER=https://localhost:<proxy port> and TRUST_PROXY=true. The certificate is made at
 * test time (openssl, EC P-256, one day, SAN localhost + 127.0.0.1) and added to this test
 * process's default CA list, so fetch, openid-client and jose trust it; Chromium is told to
 * trust it with its SPKI hash (`chromiumTlsArgs`).
 *
 *   const front = await startGatewayBehindTls({ CLIENTS_FILE });
 *   front.issuer  // https://localhost:43127
 *   ...; await front.close();
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { startTestGateway } from './gateway.ts';
import { freePort } from './ports.ts';

export interface Certificate {
  key: string;
  cert: string;
  /** base64 SHA-256 of the public key, for Chromium's --ignore-certificate-errors-spki-list. */
  spki: string;
}

let made: Certificate | null = null;

/** A self-signed certificate for localhost and 127.0.0.1, trusted by this process from now on. */
export function testCertificate(): Certificate {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), 'gh-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const der = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  made = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert, spki: createHash('sha256').update(der).digest('base64') };
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), cert]);
  return made;
}

export function chromiumTlsArgs(): string[] {
  return [`--ignore-certificate-errors-spki-list=${testCertificate().spki}`];
}

export interface TlsProxy {
  port: number;
  close(): Promise<void>;
}

/** https://127.0.0.1:<port> -> http://127.0.0.1:<target>, adding X-Forwarded-Proto/-For. */
export async function startTlsProxy(targetPort: number, port = 0): Promise<TlsProxy> {
  const { key, cert } = testCertificate();
  const server = https.createServer({ key, cert }, (req, res) => {
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1' },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A test gateway reachable only through TLS at https://localhost:<port> (its ISSUER). */
export async function startGatewayBehindTls(env: Record<string, string | undefined> = {}) {
  const port = await freePort();
  const issuer = `https://localhost:${port}`;
  const gw = await startTestGateway({ ...env, ISSUER: issuer, TRUST_PROXY: 'true' });
  const proxy = await startTlsProxy(Number(new URL(gw.url).port), port);
  const closeGateway = gw.close.bind(gw);
  return Object.assign(gw, {
    issuer,
    async close() {
      await proxy.close();
      await closeGateway();
    },
  });
}
