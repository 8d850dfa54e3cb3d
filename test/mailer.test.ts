/**
 * Outbound mail through the outbox against a real SMTP server (test/helpers/smtp-sink.ts)
 * and the in-memory store: delivered once with Auto-Submitted, nothing lost while the
 * mail server is down, retried with backoff, dead after the last attempt, and two
 * workers on one store never send the same message twice. Tests never sleep to see that
 * nothing happens: they run the worker's polls themselves (`worker.poll()`), move its
 * clock, or stop it (which waits for the sends in flight) before they count.
 */
import test from 'ava';
import type { ParsedMail } from 'mailparser';
import { createMemoryStore } from '../adapters/store-memory.ts';
import { createMailer, exponentialBackoff, startOutboxWorker, withAutoSubmitted, type MailLogger } from '../adapters/mailer.ts';
import type { OutboxMessage, OutboxStore } from '../adapters/store.ts';
import { startSmtpSink } from './helpers/smtp-sink.ts';

const FROM = 'Gatehouse <no-reply@gatehouse.test>';

function recordingLogger(): MailLogger & { lines: string[] } {
  const lines: string[] = [];
  const push = (obj: object, msg?: string) => lines.push(`${JSON.stringify(obj)} ${msg ?? ''}`);
  return { lines, info: push, warn: push, error: push };
}

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!ok(value)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
    value = await read();
  }
  return value;
}

async function statusOf(outbox: OutboxStore, id: string): Promise<OutboxMessage> {
  const found = (await outbox.list({})).find((m) => m.id === id);
  if (!found) throw new Error(`outbox message ${id} vanished`);
  return found;
}

function bySubject(subject: string) {
  return (m: ParsedMail) => m.subject === subject;
}

test('a queued message is delivered once, with Auto-Submitted: auto-generated', async (t) => {
  const sink = await startSmtpSink();
  const store = createMemoryStore();
  const mailer = createMailer({ smtpUrl: sink.url, from: FROM });
  const worker = startOutboxWorker({ outbox: store.outbox, mailer, intervalMs: 50, logger: recordingLogger() });
  try {
    const queued = await store.outbox.enqueue({
      to: 'jane@customer.test',
      subject: 'Verify your email',
      text: 'Open https://id.test/verify/abc',
      html: '<p>Open <a href="https://id.test/verify/abc">this link</a></p>',
      headers: { 'X-Gatehouse-Kind': 'verify-email', 'auto-submitted': 'no' },
    });
    const mail = await sink.waitFor(bySubject('Verify your email'), 5000);
    t.is(mail.headers.get('auto-submitted'), 'auto-generated');
    t.is(mail.headers.get('x-gatehouse-kind'), 'verify-email');
    t.is(mail.from?.value[0]?.address, 'no-reply@gatehouse.test');
    t.deepEqual(Array.isArray(mail.to) ? mail.to.flatMap((a) => a.value.map((v) => v.address)) : mail.to?.value.map((v) => v.address), ['jane@customer.test']);
    t.is(mail.text?.trim(), 'Open https://id.test/verify/abc');
    t.true(String(mail.html).includes('href="https://id.test/verify/abc"'));
    t.is(mail.messageId, `<${queued.id}@gatehouse.test>`);
    const sent = await eventually(() => statusOf(store.outbox, queued.id), (m) => m.status === 'sent', 2000);
    t.is(sent.attempts, 1);
    t.truthy(sent.sentAt);
    // Several more polls: still exactly one delivery.
    for (let i = 0; i < 3; i++) await worker.poll();
    t.is(sink.messages.filter(bySubject('Verify your email')).length, 1);
  } finally {
    await worker.stop();
    await mailer.close();
    await sink.stop();
  }
});

test('with the mail server down nothing is lost: retried with backoff, delivered after it comes back', async (t) => {
  const sink = await startSmtpSink();
  await sink.down();
  const store = createMemoryStore();
  const mailer = createMailer({ smtpUrl: sink.url, from: FROM, timeoutMs: 2000 });
  const delays: number[] = [];
  const backoff = (attempt: number) => {
    delays.push(attempt);
    return 100 * attempt;
  };
  const logger = recordingLogger();
  const worker = startOutboxWorker({ outbox: store.outbox, mailer, intervalMs: 20, backoff, maxAttempts: 50, logger });
  try {
    const queued = await store.outbox.enqueue({ to: 'bob@customer.test', subject: 'Your invitation', text: 'secret-link-xyz' });
    // Three attempts made and the third failure recorded (not merely claimed).
    const failing = await eventually(() => statusOf(store.outbox, queued.id), (m) => m.attempts >= 3 && m.status === 'pending', 5000);
    t.truthy(failing.lastError, 'the failure is recorded');
    t.deepEqual(delays.slice(0, 2), [1, 2], 'backoff is asked with the attempt number');
    t.is(sink.messages.length, 0);

    await sink.up();
    const mail = await sink.waitFor(bySubject('Your invitation'), 5000);
    t.is(mail.headers.get('auto-submitted'), 'auto-generated');
    const sent = await eventually(() => statusOf(store.outbox, queued.id), (m) => m.status === 'sent', 2000);
    t.true(sent.attempts >= 4);
    for (let i = 0; i < 3; i++) await worker.poll();
    t.is(sink.messages.length, 1, 'delivered exactly once');
    t.true(logger.lines.some((line) => line.includes('mail_retry')));
    t.false(logger.lines.some((line) => line.includes('secret-link-xyz')), 'bodies never reach the logs');
  } finally {
    await worker.stop();
    await mailer.close();
    await sink.stop();
  }
});

test('retries wait for the backoff: the next attempt is not made before it is due, and is made when it is', async (t) => {
  const sink = await startSmtpSink();
  await sink.down();
  const store = createMemoryStore();
  const mailer = createMailer({ smtpUrl: sink.url, from: FROM, timeoutMs: 2000 });
  // The worker's clock is the test's: it only polls when told (the interval is an hour).
  let clock = Date.now();
  const worker = startOutboxWorker({ outbox: store.outbox, mailer, intervalMs: 3_600_000, backoff: () => 60_000, logger: recordingLogger(), now: () => new Date(clock) });
  try {
    const queued = await store.outbox.enqueue({ to: 'c@customer.test', subject: 'Later', text: 'x' });
    clock = Date.now();
    await worker.poll();
    const failed = await statusOf(store.outbox, queued.id);
    t.is(failed.attempts, 1);
    t.is(failed.status, 'pending');
    t.truthy(failed.lastError);
    t.is(failed.nextAttemptAt.getTime(), clock + 60_000, 'next attempt scheduled by the backoff');

    clock += 59_000;
    await worker.poll();
    t.is((await statusOf(store.outbox, queued.id)).attempts, 1, 'no attempt before it is due');

    await sink.up();
    clock += 1_000;
    await worker.poll();
    const sent = await statusOf(store.outbox, queued.id);
    t.is(sent.attempts, 2, 'the attempt is made once it is due');
    t.is(sent.status, 'sent');
    t.is(sink.messages.filter(bySubject('Later')).length, 1);
  } finally {
    await worker.stop();
    await mailer.close();
    await sink.stop();
  }
});

test('a message is marked dead after maxAttempts and never sent afterwards', async (t) => {
  const sink = await startSmtpSink();
  await sink.down();
  const store = createMemoryStore();
  const mailer = createMailer({ smtpUrl: sink.url, from: FROM, timeoutMs: 2000 });
  const logger = recordingLogger();
  const worker = startOutboxWorker({ outbox: store.outbox, mailer, intervalMs: 10, maxAttempts: 3, backoff: () => 10, logger });
  try {
    const queued = await store.outbox.enqueue({ to: 'd@customer.test', subject: 'Doomed', text: 'x' });
    const dead = await eventually(() => statusOf(store.outbox, queued.id), (m) => m.status === 'dead', 5000);
    t.is(dead.attempts, 3);
    t.true(logger.lines.some((line) => line.includes('mail_dead')));
    await sink.up();
    for (let i = 0; i < 3; i++) await worker.poll();
    t.is(sink.messages.length, 0);
  } finally {
    await worker.stop();
    await mailer.close();
    await sink.stop();
  }
});

test('two workers on one store never send a message twice', async (t) => {
  const sink = await startSmtpSink();
  const store = createMemoryStore();
  const mailerA = createMailer({ smtpUrl: sink.url, from: FROM });
  const mailerB = createMailer({ smtpUrl: sink.url, from: FROM });
  const subjects = Array.from({ length: 30 }, (_, i) => `Message ${i}`);
  for (const subject of subjects) await store.outbox.enqueue({ to: 'e@customer.test', subject, text: subject });
  const workerA = startOutboxWorker({ outbox: store.outbox, mailer: mailerA, intervalMs: 5, batchSize: 3, logger: recordingLogger() });
  const workerB = startOutboxWorker({ outbox: store.outbox, mailer: mailerB, intervalMs: 5, batchSize: 3, logger: recordingLogger() });
  try {
    await eventually(() => store.outbox.list({ status: 'sent' }), (sent) => sent.length === subjects.length, 15_000);
    // Stopping waits for every send in flight: after it nothing more can arrive.
    await Promise.all([workerA.stop(), workerB.stop()]);
    const received = sink.messages.map((m) => m.subject ?? '');
    t.is(received.length, subjects.length);
    t.deepEqual([...new Set(received)].sort(), [...subjects].sort());
  } finally {
    await Promise.all([workerA.stop(), workerB.stop()]);
    await Promise.all([mailerA.close(), mailerB.close()]);
    await sink.stop();
  }
});

test('a message claimed by a worker that died is sent by another once the lease expires', async (t) => {
  const sink = await startSmtpSink();
  const store = createMemoryStore();
  const queued = await store.outbox.enqueue({ to: 'f@customer.test', subject: 'Orphaned', text: 'x' });
  // A worker claims it with a one-minute lease, then "crashes" without marking anything.
  const claimedAt = Date.now();
  const [claimed] = await store.outbox.claimDue(new Date(claimedAt), 60_000, 10);
  t.is(claimed?.id, queued.id);
  const mailer = createMailer({ smtpUrl: sink.url, from: FROM });
  let clock = claimedAt + 59_000;
  const worker = startOutboxWorker({ outbox: store.outbox, mailer, intervalMs: 3_600_000, leaseMs: 5000, logger: recordingLogger(), now: () => new Date(clock) });
  try {
    await worker.poll();
    t.is((await statusOf(store.outbox, queued.id)).attempts, 1, 'not taken while the lease holds');
    clock = claimedAt + 61_000;
    await worker.poll();
    const sent = await statusOf(store.outbox, queued.id);
    t.is(sent.status, 'sent');
    t.is(sent.attempts, 2);
    t.is(sink.messages.filter(bySubject('Orphaned')).length, 1);
  } finally {
    await worker.stop();
    await mailer.close();
    await sink.stop();
  }
});

test('kick() polls at once instead of waiting for the interval', async (t) => {
  const sink = await startSmtpSink();
  const store = createMemoryStore();
  const mailer = createMailer({ smtpUrl: sink.url, from: FROM });
  const worker = startOutboxWorker({ outbox: store.outbox, mailer, intervalMs: 60_000, logger: recordingLogger() });
  try {
    await worker.poll(); // the first (empty) poll is done; the next one is a minute away
    await store.outbox.enqueue({ to: 'g@customer.test', subject: 'Kicked', text: 'x' });
    worker.kick();
    const started = Date.now();
    await sink.waitFor(bySubject('Kicked'), 5000);
    t.true(Date.now() - started < 5000);
  } finally {
    await worker.stop();
    await mailer.close();
    await sink.stop();
  }
});

test('Auto-Submitted is forced whatever the caller put in the headers', (t) => {
  t.deepEqual(withAutoSubmitted(undefined), { 'Auto-Submitted': 'auto-generated' });
  t.deepEqual(withAutoSubmitted({ 'AUTO-SUBMITTED': 'no', 'X-A': '1' }), { 'X-A': '1', 'Auto-Submitted': 'auto-generated' });
});

test('the default backoff grows exponentially up to its cap', (t) => {
  const backoff = exponentialBackoff({ baseMs: 1000, capMs: 10_000 });
  t.deepEqual([1, 2, 3, 4, 5, 12].map(backoff), [1000, 2000, 4000, 8000, 10_000, 10_000]);
});

test('a bad SMTP URL stops the mailer at construction with a named code', (t) => {
  t.throws(() => createMailer({ smtpUrl: 'http://mail', from: FROM }), { message: /mailer_config_invalid/ });
  t.throws(() => createMailer({ smtpUrl: 'not a url', from: FROM }), { message: /mailer_config_invalid/ });
});
