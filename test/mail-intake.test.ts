/**
 * The built-in SMTP intake, fed real mail by nodemailer over SMTP: a person's mail
 * reaches onSender with the From address and name as written; auto-replies, bounces,
 * reports and list mail never do (and still get 250); a failing onSender becomes a
 * temporary SMTP error the sending MTA retries.
 */
import test from 'ava';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import type Mail from 'nodemailer/lib/mailer';
import { classifyInbound, startMailIntake, type InboundSender, type MailIntake } from '../adapters/mail-intake.ts';

const RCPT = 'support@desk.test';

interface Fixture {
  intake: MailIntake;
  calls: InboundSender[];
  logs: Array<Record<string, unknown>>;
  failNext: { count: number };
}

let fixture: Fixture;

test.before(async () => {
  const calls: InboundSender[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const failNext = { count: 0 };
  const record = (obj: object) => logs.push(obj as Record<string, unknown>);
  const intake = await startMailIntake({
    port: 0,
    maxMessageBytes: 64 * 1024,
    logger: { info: record, warn: record, error: record },
    async onSender(sender) {
      if (failNext.count > 0) {
        failNext.count -= 1;
        throw new Error('store unavailable');
      }
      calls.push(sender);
    },
  });
  fixture = { intake, calls, logs, failNext };
});

test.after.always(async () => {
  await fixture?.intake.stop();
});

let sequence = 0;
function uniqueMessageId(): string {
  sequence += 1;
  return `<intake-${process.pid}-${sequence}-${Date.now()}@sender.test>`;
}

async function send(mail: Mail.Options): Promise<SMTPTransport.SentMessageInfo> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: fixture.intake.port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 5000,
    socketTimeout: 5000,
  });
  try {
    return await transport.sendMail({ to: RCPT, subject: 'Help please', text: 'My printer is on fire.', ...mail });
  } finally {
    transport.close();
  }
}

function callsFor(messageId: string): InboundSender[] {
  return fixture.calls.filter((call) => call.messageId === messageId);
}

function logsFor(messageId: string): Array<Record<string, unknown>> {
  return fixture.logs.filter((entry) => entry['messageId'] === messageId);
}

test('a person\'s mail calls onSender with the From address (as written) and display name', async (t) => {
  const messageId = uniqueMessageId();
  // Raw, because nodemailer itself lower-cases domains on the way out.
  const raw = ['From: "Jane Doe" <Jane.Doe@Customer.Test>', `To: ${RCPT}`, `Message-ID: ${messageId}`, 'Subject: Help', '', 'hi', ''].join('\r\n');
  const info = await send({ envelope: { from: 'bounces@relay.test', to: [RCPT] }, raw });
  t.regex(info.response, /^250 /);
  t.deepEqual(callsFor(messageId), [{ email: 'Jane.Doe@Customer.Test', name: 'Jane Doe', messageId }]);
});

test('an encoded display name arrives decoded', async (t) => {
  const messageId = uniqueMessageId();
  await send({ from: { name: 'Zoë Ünal', address: 'zoe@customer.test' }, messageId });
  t.deepEqual(callsFor(messageId), [{ email: 'zoe@customer.test', name: 'Zoë Ünal', messageId }]);
});

test('Auto-Submitted: no is a person writing', async (t) => {
  const messageId = uniqueMessageId();
  await send({ from: 'sam@customer.test', messageId, headers: { 'Auto-Submitted': 'no' } });
  t.deepEqual(callsFor(messageId), [{ email: 'sam@customer.test', name: '', messageId }]);
});

test('without a From header the envelope sender is used', async (t) => {
  const messageId = uniqueMessageId();
  const raw = [`Message-ID: ${messageId}`, `To: ${RCPT}`, 'Subject: no from', '', 'hello', ''].join('\r\n');
  await send({ envelope: { from: 'env.only@customer.test', to: [RCPT] }, raw });
  t.deepEqual(callsFor(messageId), [{ email: 'env.only@customer.test', name: '', messageId }]);
});

const ignored: Array<[string, string, Mail.Options]> = [
  ['Auto-Submitted: auto-replied (out of office)', 'auto_submitted', { headers: { 'Auto-Submitted': 'auto-replied' } }],
  ['Auto-Submitted: auto-generated', 'auto_submitted', { headers: { 'Auto-Submitted': 'auto-generated' } }],
  ['Auto-Submitted with a comment and a parameter', 'auto_submitted', { headers: { 'Auto-Submitted': 'Auto-Replied (vacation); owner-email="x@y"' } }],
  ['Precedence: bulk', 'bulk_precedence', { headers: { Precedence: 'bulk' } }],
  ['Precedence: junk', 'bulk_precedence', { headers: { Precedence: 'junk' } }],
  ['Precedence: list', 'bulk_precedence', { headers: { Precedence: 'List' } }],
  ['List-Id', 'mailing_list', { headers: { 'List-Id': 'Customers <customers.lists.customer.test>' } }],
  ['List-Unsubscribe', 'mailing_list', { headers: { 'List-Unsubscribe': '<mailto:unsub@customer.test>' } }],
  ['X-Autoreply', 'auto_reply_header', { headers: { 'X-Autoreply': 'yes' } }],
  ['X-Autorespond', 'auto_reply_header', { headers: { 'X-Autorespond': 'yes' } }],
  ['null return path (MAIL FROM:<>)', 'null_return_path', { envelope: { from: '', to: [RCPT] } }],
  ['From MAILER-DAEMON@', 'system_sender', { from: 'Mail Delivery System <MAILER-DAEMON@mx.customer.test>' }],
  ['From postmaster@', 'system_sender', { from: 'postmaster@customer.test' }],
  ['envelope sender postmaster@', 'system_sender', { envelope: { from: 'Postmaster@customer.test', to: [RCPT] } }],
  ['two From addresses', 'ambiguous_sender', { from: ['a@customer.test', 'b@customer.test'] as unknown as string }],
];

for (const [title, reason, options] of ignored) {
  test(`ignored, still answered 250: ${title}`, async (t) => {
    const messageId = uniqueMessageId();
    const info = await send({ from: 'Real Person <person@customer.test>', messageId, ...options });
    t.regex(info.response, /^250 /, 'same answer as accepted mail');
    t.deepEqual(callsFor(messageId), [], 'onSender not called');
    t.like(logsFor(messageId)[0], { code: 'mail_intake_ignored', reason });
  });
}

test('ignored, still answered 250: a delivery-status report (multipart/report)', async (t) => {
  const messageId = uniqueMessageId();
  const raw = [
    'From: Mail System <mail@mx.customer.test>',
    `To: ${RCPT}`,
    'Subject: Undelivered Mail Returned to Sender',
    `Message-ID: ${messageId}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'Your message could not be delivered.',
    '--b1',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.customer.test',
    '',
    'Final-Recipient: rfc822; nobody@customer.test',
    'Action: failed',
    'Status: 5.1.1',
    '--b1--',
    '',
  ].join('\r\n');
  const info = await send({ envelope: { from: 'mail@mx.customer.test', to: [RCPT] }, raw });
  t.regex(info.response, /^250 /);
  t.deepEqual(callsFor(messageId), []);
  t.like(logsFor(messageId)[0], { code: 'mail_intake_ignored', reason: 'delivery_report' });
});

test.serial('when onSender fails the client gets a temporary error, and a retry goes through', async (t) => {
  const messageId = uniqueMessageId();
  fixture.failNext.count = 1;
  const error = await t.throwsAsync(send({ from: 'retry@customer.test', messageId }));
  t.is((error as Error & { responseCode?: number }).responseCode, 451);
  t.deepEqual(callsFor(messageId), []);
  // The sending MTA retries later: same message, now accepted.
  await send({ from: 'retry@customer.test', messageId });
  t.deepEqual(callsFor(messageId), [{ email: 'retry@customer.test', name: '', messageId }]);
});

test('a message over maxMessageBytes is refused permanently and not handed over', async (t) => {
  const messageId = uniqueMessageId();
  const error = await t.throwsAsync(send({ from: 'big@customer.test', messageId, text: 'x'.repeat(100 * 1024) }));
  t.is((error as Error & { responseCode?: number }).responseCode, 552);
  t.deepEqual(callsFor(messageId), []);
});

test('bodies are never logged', async (t) => {
  const messageId = uniqueMessageId();
  await send({ from: 'quiet@customer.test', messageId, text: 'body-secret-42' });
  await send({ from: 'quiet@customer.test', messageId: uniqueMessageId(), text: 'body-secret-42', headers: { Precedence: 'bulk' } });
  t.false(JSON.stringify(fixture.logs).includes('body-secret-42'));
  t.true(logsFor(messageId).length > 0);
});

test('classifyInbound without an envelope falls back to nothing and refuses a message with no sender', async (t) => {
  const { simpleParser } = await import('mailparser');
  const parsed = await simpleParser(`To: ${RCPT}\r\nSubject: x\r\n\r\nhi\r\n`);
  t.deepEqual(classifyInbound(parsed), { accept: false, reason: 'no_sender' });
  const withFrom = await simpleParser(`From: "Ann" <ann@customer.test>\r\nTo: ${RCPT}\r\n\r\nhi\r\n`);
  t.deepEqual(classifyInbound(withFrom), { accept: true, email: 'ann@customer.test', name: 'Ann' });
});
