/**
 * DNS that a test controls, for the SMTP intake's SPF/DKIM/DMARC checks (mailauth takes a
 * resolver function): a table of "TYPE name" -> records; anything else does not exist.
 * Nothing leaves the machine.
 *
 *   const dns = dnsTable({ 'TXT customer.test': ['v=spf1 ip4:127.0.0.1 -all'] });
 *   await startTestGateway({ SMTP_INTAKE_PORT: ... }, { mailResolver: dns.resolve });
 *   dns.set('TXT _dmarc.customer.test', ['v=DMARC1; p=reject']);
 */
import { generateKeyPairSync } from 'node:crypto';

export interface DnsTable {
  resolve: (name: string, rrtype: string) => Promise<string[][]>;
  set(key: string, txt: string[] | 'timeout'): void;
  /** Every query asked, as "TYPE name". */
  queries: string[];
}

export function dnsTable(initial: Record<string, string[] | 'timeout'> = {}): DnsTable {
  const records = new Map(Object.entries(initial).map(([k, v]) => [k.toLowerCase(), v]));
  const queries: string[] = [];
  return {
    queries,
    set(key, txt) {
      records.set(key.toLowerCase(), txt);
    },
    async resolve(name, rrtype) {
      const key = `${rrtype} ${name}`.toLowerCase().replace(/\.$/, '');
      queries.push(key);
      const found = records.get(key);
      if (found === 'timeout') throw Object.assign(new Error(`query ${key} ETIMEOUT`), { code: 'ETIMEOUT' });
      if (!found) throw Object.assign(new Error(`query ${key} ENOTFOUND`), { code: 'ENOTFOUND' });
      // TXT answers are lists of character-strings; one string per record here.
      return found.map((r) => [r]);
    },
  };
}

/** An RSA key pair for DKIM: the PEM private key for nodemailer, the DNS record for the table. */
export function dkimKey(): { privateKey: string; record: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
  };
}
