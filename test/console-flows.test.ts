/**
 * The console loses nothing, in headless Chromium against a real gateway: saves
 * redirect (a reload never re-submits), a form posted after the session ended comes
 * back after the re-sign-in, a concurrent edit keeps the admin's values and shows what
 * changed, destructive actions state their consequences first (sessions that end,
 * portals bound to a service), customers get a page and invitations, pasted denylist
 * problems name their lines, and the audit log names people instead of ids.
 */
import test, { type ExecutionContext } from 'ava';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, signInAsAdmin } from './helpers/browser.ts';
import { startTestGateway, TEST_ADMIN } from './helpers/gateway.ts';
import { call, clientsFile, clientToken, createUser, userTokens } from './helpers/admin-api.ts';
import { addService, setPolicy } from './helpers/policy.ts';

async function signedIn(t: ExecutionContext, env: Record<string, string> = {}) {
  const gw = await startTestGateway(env);
  t.teardown(() => gw.close());
  const browser = await launchChromium(t);
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${gw.issuer}/admin`);
  await signInAsAdmin(page);
  await page.waitForURL(`${gw.issuer}/admin/access`);
  return { gw, context, page };
}

/** Ends the console session and the sign-in session as expiry would: only the form's CSRF cookie stays. */
async function expire(context: BrowserContext): Promise<void> {
  const kept = (await context.cookies()).filter((c) => c.name.startsWith('gh.csrf'));
  await context.clearCookies();
  await context.addCookies(kept);
}

const status = async (page: Page) => (await page.getByRole('status').first().textContent()) ?? '';

test('a save redirects (reload never re-submits); an expired session gives the form back after sign-in', async (t) => {
  const { gw, context, page } = await signedIn(t);
  await page.getByRole('link', { name: 'Services' }).click();
  await page.getByLabel('Id (lowercase letters, digits, dashes)').fill('desk');
  await page.getByLabel('Name').fill('Desk');
  await page.getByRole('button', { name: 'Add service' }).click();
  t.regex(await status(page), /Service Desk added/);
  t.is(new URL(page.url()).pathname, '/admin/services', 'answered with a redirect to the list');
  const audited = async () => (await gw.context.store.audit.list({ action: 'service.create' })).items.length;
  t.is(await audited(), 1);
  await page.reload();
  t.is(await audited(), 1, 'a reload does not post again');
  t.is(await page.getByRole('status').count(), 0, 'the notice is shown once');

  // The session ends while the admin edits Customer access: nothing is lost.
  await page.getByRole('link', { name: 'Customer access' }).click();
  await expire(context);
  await page.getByLabel('Allow customers to register themselves').check();
  await page.getByLabel('Anyone may register').check();
  await page.getByLabel('Desk').check();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/\/interaction\//);
  t.is((await gw.context.store.policy.get())?.selfRegistration ?? 'off', 'off', 'nothing saved without a session');
  await signInAsAdmin(page);
  await page.waitForURL(/\/admin\/access\?restore=/);
  t.regex(await status(page), /session had ended/);
  t.true(await page.getByLabel('Allow customers to register themselves').isChecked(), 'the edits are back');
  t.true(await page.getByLabel('Anyone may register').isChecked());
  t.true(await page.getByLabel('Desk').isChecked());
  await page.getByRole('button', { name: 'Save' }).click();
  t.regex(await status(page), /Saved/);
  t.like(await gw.context.store.policy.get(), { selfRegistration: 'anyone', anyone: { defaultServices: ['desk'] } });
  // The kept form is given back once.
  await page.goto(`${gw.issuer}/admin/access?restore=${'x'.repeat(43)}`);
  t.is(await page.getByRole('status').count(), 0);
});

test('a concurrent edit keeps the admin\'s values and shows what the other save changed', async (t) => {
  const { gw, page } = await signedIn(t);
  const token = await clientToken(gw.issuer);
  await page.getByRole('link', { name: 'Customer access' }).click();
  // Someone else turns Google off meanwhile.
  const current = (await call(gw.issuer, token, 'GET', '/policy')).body;
  t.is((await call(gw.issuer, token, 'PUT', '/policy', { ...current, anyone: { ...current.anyone, google: false } })).status, 200);
  await page.getByLabel('Customers see their company\'s requests').check();
  await page.getByRole('button', { name: 'Save' }).click();
  t.regex((await page.getByRole('alert').first().textContent()) ?? '', /Someone else saved Customer access/);
  const changes = (await page.locator('table.changes').textContent()) ?? '';
  t.regex(changes, /With Sign in with Google\s*on\s*off/);
  t.true(await page.getByLabel('Customers see their company\'s requests').isChecked(), 'the admin\'s edit is kept');
  await page.getByRole('button', { name: 'Save' }).click();
  t.regex(await status(page), /Saved/);
  t.like(await gw.context.store.policy.get(), { portal: { companyRequestsVisible: true } });

  // The same for a company: its page was opened, another save came first.
  t.is((await call(gw.issuer, token, 'POST', '/companies', { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'] })).status, 201);
  await page.goto(`${gw.issuer}/admin/companies/acme`);
  t.is((await call(gw.issuer, token, 'PUT', '/companies/acme', { name: 'Acme Group', acceptedDomains: ['acme.example'] })).status, 200);
  await page.getByLabel('Accepted domains (one per line)').fill('acme.example\nacme-eu.example');
  await page.getByRole('button', { name: 'Save company' }).click();
  t.regex((await page.getByRole('alert').first().textContent()) ?? '', /changed by someone else/);
  t.regex((await page.locator('table.changes').textContent()) ?? '', /Name\s*Acme\s*Acme Group/);
  t.is(await page.getByLabel('Accepted domains (one per line)').inputValue(), 'acme.example\nacme-eu.example');
  await page.getByRole('button', { name: 'Save company' }).click();
  t.regex(await status(page), /Saved/);
  t.deepEqual((await gw.context.store.companies.get('acme'))?.acceptedDomains, ['acme.example', 'acme-eu.example']);
});

test('destructive actions say what they end first; customers have a page, invitations and portal access', async (t) => {
  const redirect = 'http://127.0.0.1:9/callback';
  const { writeClientsFile } = await import('./helpers/gateway.ts');
  const clients = writeClientsFile([
    ...JSON.parse((await import('node:fs')).readFileSync(clientsFile(), 'utf8')),
    { client_id: 'billing-portal', client_name: 'Billing portal', client_secret: 'billing-portal-secret-0123456789abcdefgh', redirect_uris: [redirect], first_party: true, service: 'billing' },
  ]);
  const { gw, page } = await signedIn(t, { CLIENTS_FILE: clients });
  await addService(gw, { id: 'billing', name: 'Billing', requestAccess: 'granted' });

  // The service's delete page names the portal bound to it; nothing happens before the button.
  await page.goto(`${gw.issuer}/admin/services`);
  await page.getByRole('link', { name: /^Delete Billing/ }).click();
  t.regex((await page.locator('#consequences').textContent()) ?? '', /Break the 1 portal bound to it: Billing portal \(billing-portal\)/);
  await page.getByRole('link', { name: 'Cancel' }).click();
  t.truthy(await gw.context.store.services.get('billing'));

  // A customer signed in somewhere: disabling says how many sessions end.
  const pat = await createUser(gw, { email: 'pat@else.example' });
  await userTokens(gw.issuer, pat.email, pat.password);
  await page.goto(`${gw.issuer}/admin/customers/${pat.customer.id}`);
  t.regex((await page.locator('#session-count').textContent()) ?? '', /^1 active sign-in session, 1 grant/);
  await page.getByRole('link', { name: 'Delete & denylist…' }).click();
  t.regex((await page.locator('#consequences').textContent()) ?? '', /End 1 sign-in session and 1 grant.*Add pat@else\.example to the denylist/s);
  await page.getByRole('link', { name: 'Cancel' }).click();
  await page.getByRole('link', { name: 'Disable…' }).click();
  await page.getByRole('button', { name: 'Disable customer' }).click();
  t.regex(await status(page), /Customer disabled/);
  t.is(await page.locator('#customer-status').textContent(), 'disabled');

  // Agent add from the console: invited by default, then on the customer's page.
  await page.goto(`${gw.issuer}/admin/customers`);
  await page.getByLabel('Email', { exact: true }).fill('new.one@else.example');
  await page.getByLabel('Name', { exact: true }).fill('New One');
  await page.getByRole('button', { name: 'Add customer' }).click();
  t.regex(await status(page), /Customer new\.one@else\.example added\. An invitation/);
  t.is(await page.getByRole('heading', { level: 1 }).textContent(), 'New One');
  const invites = async (to: string) => (await gw.context.store.outbox.list({ to })).filter((m) => /Set your password/.test(m.subject)).length;
  t.is(await invites('new.one@else.example'), 1);

  // Portal access granted later sends the invitation.
  const mailed = await gw.context.registration.register({ method: 'agent', email: 'mo@else.example', emailVerified: true, actor: 'system' });
  t.is(mailed.kind, 'created');
  const mo = mailed.kind === 'created' ? mailed.customer : null;
  await gw.context.store.customers.update(mo!.id, { portalAccess: false });
  await page.goto(`${gw.issuer}/admin/customers/${mo!.id}`);
  t.is(await page.locator('#portal-access').textContent(), 'no, no password yet');
  await page.getByRole('button', { name: 'Grant portal access and invite' }).click();
  t.regex(await status(page), /invitation to set a password was sent to mo@else\.example/);
  t.true((await gw.context.store.customers.get(mo!.id))?.portalAccess);
  t.is(await invites('mo@else.example'), 1);

  // The audit log names people: the admin by address, the customer by address.
  await page.goto(`${gw.issuer}/admin/audit?search=${encodeURIComponent('mo@else.example')}`);
  const rows = (await page.locator('tbody').textContent()) ?? '';
  t.regex(rows, /customer\.portal_access/);
  t.regex(rows, new RegExp(TEST_ADMIN.email.replace(/\./g, '\\.')));
  t.notRegex(rows, /admin:[0-9a-f-]{36}/, 'no raw admin ids');
});

test('a pasted denylist: every problem on the line of the text area it is on', async (t) => {
  const { page } = await signedIn(t);
  await page.getByRole('link', { name: 'Denylist' }).click();
  await page.getByLabel('Addresses or domains, one per line (paste as many as you like)').fill('ok@spam.example\n\nbad domain, fine.example\nOK@spam.example\na@@b');
  await page.getByRole('button', { name: 'Add to denylist' }).click();
  const problems = (await page.locator('#dl-problems li').allTextContents()).map((s) => s.replace(/\s+/g, ' '));
  t.deepEqual(problems.map((p) => /^Line (\d+)/.exec(p)?.[1]), ['3', '4', '5']);
  t.regex(problems[0]!, /"bad domain" is not a valid domain/);
  t.regex(problems[1]!, /repeats line 1/);
  t.is(await page.getByLabel('Addresses or domains, one per line (paste as many as you like)').inputValue(), 'ok@spam.example\n\nbad domain, fine.example\nOK@spam.example\na@@b', 'the pasted text is kept');
});

test('options that depend on self-registration are greyed out while it is off, and kept; the console\'s sign-in offers no sign-up', async (t) => {
  const { gw, context, page } = await signedIn(t);
  await addService(gw, { id: 'desk', name: 'Desk', requestAccess: 'granted' });
  await page.goto(`${gw.issuer}/admin/access`);
  // A fieldset's own `disabled` (which disables every control in it).
  const fieldset = (id: string) => ({ isDisabled: () => page.locator(id).evaluate((el) => (el as HTMLFieldSetElement).disabled) });
  const anyoneOptions = fieldset('#anyone-options');
  const mode = fieldset('#registration-mode');
  // Off (the default): the mode and the "anyone" options are disabled, in the HTML the server sends too.
  t.true(await mode.isDisabled());
  t.true(await anyoneOptions.isDisabled());
  t.true(await page.getByLabel('Through the portal sign-up form').isDisabled());
  const html = await (await page.request.get(`${gw.issuer}/admin/access`)).text();
  t.regex(html, /<fieldset id="anyone-options"[^>]* disabled/, 'disabled without the script as well');

  // On, anyone: everything live; companies only: the "anyone" options greyed out again.
  await page.getByLabel('Allow customers to register themselves').check();
  t.false(await mode.isDisabled());
  t.false(await anyoneOptions.isDisabled());
  await page.getByLabel('Through the portal sign-up form').check();
  await page.getByLabel('With Sign in with Google').uncheck();
  await page.getByLabel('Desk').check();
  await page.getByLabel('Only certain companies (their accepted domains, see Companies)').check();
  t.true(await anyoneOptions.isDisabled());
  await page.getByLabel('Anyone may register').check();
  t.false(await anyoneOptions.isDisabled());
  await page.getByRole('button', { name: 'Save' }).click();
  t.regex(await status(page), /Saved/);
  t.like(await gw.context.store.policy.get(), { selfRegistration: 'anyone', anyone: { portal: true, google: false, defaultServices: ['desk'] } });

  // Turned off: the options are not posted (disabled), and the stored ones stay for later.
  await page.getByLabel('Allow customers to register themselves').uncheck();
  t.true(await anyoneOptions.isDisabled());
  await page.getByRole('button', { name: 'Save' }).click();
  t.regex(await status(page), /Saved/);
  t.like(await gw.context.store.policy.get(), { selfRegistration: 'off', anyone: { portal: true, google: false, defaultServices: ['desk'] } });
  t.true(await anyoneOptions.isDisabled());
  t.true(await page.getByLabel('Through the portal sign-up form').isChecked(), 'kept, greyed out');

  // A company: its sign-up methods are greyed out while it does not permit self-registration, and kept.
  const token = await clientToken(gw.issuer);
  t.is((await call(gw.issuer, token, 'POST', '/companies', { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'], selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: false } })).status, 201);
  await page.goto(`${gw.issuer}/admin/companies/acme`);
  t.false(await page.getByLabel('By email').isDisabled());
  await page.getByLabel('Permitted').uncheck();
  t.true(await page.getByLabel('By email').isDisabled());
  await page.getByRole('button', { name: 'Save company' }).click();
  t.regex(await status(page), /Saved/);
  t.deepEqual((await gw.context.store.companies.get('acme'))?.selfRegistration, { permitted: false, portal: true, email: true, grantPortalAccess: false });

  // The console's sign-in page: no customer sign-up, though the policy allows it for portals.
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { portal: true } });
  await context.clearCookies();
  await page.goto(`${gw.issuer}/admin`);
  await page.waitForURL(/\/interaction\//);
  t.truthy(await page.locator('#admin-signin-note').textContent());
  t.is(await page.getByRole('link', { name: 'Create an account' }).count(), 0, 'no sign-up on the admin sign-in page');
  // The same policy, a customer's portal: sign-up is offered there.
  await page.goto(`${gw.issuer}/sample-portal/`);
  await page.getByRole('link', { name: 'Sign in or create an account' }).click();
  await page.waitForURL(/\/interaction\//);
  t.is(await page.getByRole('link', { name: 'Create an account' }).count(), 1);
});

test('a customer\'s page links a sign-in: recorded as the admin\'s, named by address; one held by someone else is refused with the form kept', async (t) => {
  const { gw, context, page } = await signedIn(t);
  const ann = await createUser(gw, { email: 'ann@else.example' });
  const bob = await createUser(gw, { email: 'bob@else.example' });
  const subject = 'S-1-5-21-1004336348-1177238915-682003330-1104';
  await page.goto(`${gw.issuer}/admin/customers/${ann.customer.id}`);
  await page.getByText('Link a sign-in').click();
  await page.getByLabel('Signs in with').selectOption('connector');
  await page.getByLabel('Subject').fill(subject);
  await page.getByRole('button', { name: 'Link' }).click();
  t.regex(await status(page), /Linked: ann@else\.example may now sign in with it/);
  t.is(new URL(page.url()).pathname, `/admin/customers/${ann.customer.id}`, 'redirected to the customer (PRG)');
  t.regex((await page.locator('#identities').textContent()) ?? '', new RegExp(`on-premises login page\\)\\s*${subject}, linked by ${TEST_ADMIN.email.replace(/\./g, '\\.')}`));

  await page.goto(`${gw.issuer}/admin/customers/${bob.customer.id}`);
  await page.getByText('Link a sign-in').click();
  await page.getByLabel('Signs in with').selectOption('connector');
  await page.getByLabel('Subject').fill(subject);
  await page.getByRole('button', { name: 'Link' }).click();
  t.regex((await page.getByRole('alert').first().textContent()) ?? '', /already linked to ann@else\.example/);
  t.is(await page.getByLabel('Subject').inputValue(), subject, 'the typed subject is kept');
  t.deepEqual((await gw.context.store.customers.get(bob.customer.id))?.identities, []);

  // An action's button pressed after the session ended: back on the customer's page after the sign-in, told it was not done.
  await page.goto(`${gw.issuer}/admin/customers/${bob.customer.id}`);
  await page.getByText('Link a sign-in').click();
  await page.getByLabel('Subject').fill('S-1-5-21-1004336348-1177238915-682003330-1105');
  await expire(context);
  await page.getByRole('button', { name: 'Link' }).click();
  await page.waitForURL(/\/interaction\//);
  await signInAsAdmin(page);
  await page.waitForURL(`${gw.issuer}/admin/customers/${bob.customer.id}`);
  t.regex(await status(page), /session had ended, so that was not done/);
  t.deepEqual((await gw.context.store.customers.get(bob.customer.id))?.identities, [], 'nothing linked without a session');
});

test('forms kept for a re-sign-in are bounded per address: an anonymous client cannot make the store keep forms without end', async (t) => {
  const { gw, context, page } = await signedIn(t);
  await page.getByRole('link', { name: 'Customer access' }).click();
  const csrf = await page.locator('form input[name="csrf"]').first().inputValue();
  await expire(context);
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const post = async () => {
    const res = await fetch(`${gw.issuer}/admin/access`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, origin: gw.issuer, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, selfRegistration: 'on', filler: 'x'.repeat(10_000) }).toString(),
    });
    return { status: res.status, location: res.headers.get('location') ?? '' };
  };
  const answers = [];
  for (let i = 0; i < 31; i++) answers.push(await post());
  t.true(answers.every((a) => a.status === 303 && a.location.startsWith('/admin/login?')), JSON.stringify(answers[0]));
  t.is(answers.filter((a) => a.location.includes('restore=')).length, 30, 'the first 30 are kept');
  t.false(answers[30]!.location.includes('restore='), 'the 31st is not kept');
});
