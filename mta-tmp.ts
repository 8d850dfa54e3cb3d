import { generateKeyPairSync } from 'node:crypto';
import nodemailer from 'nodemailer';
import { authenticate } from 'mailauth';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pub = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const table: Record<string, string[][]> = {
  'TXT customer.test': [['v=spf1 ip4:127.0.0.1 -all']],
  'TXT _dmarc.customer.test': [['v=DMARC1; p=reject']],
  'TXT sel._domainkey.customer.test': [[`v=DKIM1; k=rsa; p=${pub}`]],
  'TXT bank.test': [['v=spf1 ip4:192.0.2.1 -all']],
  'TXT _dmarc.bank.test': [['v=DMARC1; p=reject']],
};
const resolver = async (name: string, rr: string) => { const v = table[`${rr} ${name.toLowerCase()}`]; if (v) return v; throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' }); };
const t = nodemailer.createTransport({ streamTransport: true, buffer: true });
for (const [from, dkim, sender] of [['a@customer.test', true, 'a@customer.test'], ['a@customer.test', false, 'a@customer.test'], ['ceo@bank.test', false, 'x@customer.test'], ['x@nodmarc.test', false, 'x@nodmarc.test']] as const) {
  const info = await t.sendMail({ from, to: 'support@desk.test', subject: 'hi', text: 'x', ...(dkim ? { dkim: { domainName: 'customer.test', keySelector: 'sel', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string } } : {}) });
  const r = await authenticate(info.message as Buffer, { ip: '127.0.0.1', helo: 'localhost', sender, mta: 'intake.test', resolver: resolver as any, disableArc: true, disableBimi: true });
  console.log(from, dkim, 'dmarc', JSON.stringify(r.dmarc && { status: r.dmarc.status, domain: r.dmarc.domain, policy: (r.dmarc as any).policy, alignment: (r.dmarc as any).alignment }));
  console.log('  spf', JSON.stringify({ status: r.spf && (r.spf as any).status, domain: r.spf && (r.spf as any).domain }), 'dkim', JSON.stringify(r.dkim.results.map((x: any) => ({ s: x.status, d: x.signingDomain }))), 'headerFrom', JSON.stringify((r.dkim as any).headerFrom));
}
