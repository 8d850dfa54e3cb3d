// Passkeys on Gatehouse pages (no inline script: the CSP allows scripts from 'self' only).
// A button with data-passkey="authenticate" or "register" asks the form it belongs to
// (data-options-url: a POST answered with WebAuthn options as JSON) for options, lets the
// browser's authenticator answer (@simplewebauthn/browser), puts the answer in the form's
// `response` field and submits the form, so the server decides and the browser follows.
(function () {
  'use strict';
  function show(form, message) {
    var out = form.querySelector('[data-passkey-error]');
    if (out) { out.textContent = message; out.hidden = false; }
  }
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-passkey]');
    if (!button) return;
    event.preventDefault();
    var form = button.form;
    var kind = button.getAttribute('data-passkey');
    var csrf = form.querySelector('input[name="csrf"]').value;
    button.disabled = true;
    fetch(form.getAttribute('data-options-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'csrf=' + encodeURIComponent(csrf),
    }).then(function (res) {
      if (!res.ok) throw new Error('options ' + res.status);
      return res.json();
    }).then(function (options) {
      var lib = window.SimpleWebAuthnBrowser;
      return kind === 'register' ? lib.startRegistration({ optionsJSON: options }) : lib.startAuthentication({ optionsJSON: options });
    }).then(function (answer) {
      form.querySelector('input[name="response"]').value = JSON.stringify(answer);
      form.submit();
    }).catch(function (err) {
      button.disabled = false;
      show(form, 'The passkey did not answer (' + (err && err.name ? err.name : 'error') + '). Try again, or use another way.');
    });
  });
})();
