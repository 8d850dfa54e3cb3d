// The admin console's one script, progressive: every form works without it.
//
// A part of a form that only applies while another control says so carries
// data-enabled-when="<checkbox name> <radio name>=<value> ..." (all must hold). It is
// disabled while they do not, and enabled again as soon as they do. The server renders
// the same state, and keeps the stored values of a part that was disabled (a disabled
// control is not posted): turning self-registration off hides nothing and loses nothing.
(function () {
  'use strict';

  function holds(condition, form) {
    return condition.split(/\s+/).filter(Boolean).every(function (part) {
      var eq = part.indexOf('=');
      if (eq < 0) {
        var box = form.querySelector('input[type="checkbox"][name="' + part + '"]');
        return Boolean(box && box.checked);
      }
      var chosen = form.querySelector('input[type="radio"][name="' + part.slice(0, eq) + '"]:checked');
      return Boolean(chosen && chosen.value === part.slice(eq + 1));
    });
  }

  function update(form) {
    form.querySelectorAll('[data-enabled-when]').forEach(function (part) {
      part.disabled = !holds(part.getAttribute('data-enabled-when'), form);
    });
  }

  document.querySelectorAll('form').forEach(function (form) {
    if (!form.querySelector('[data-enabled-when]')) return;
    form.addEventListener('change', function () { update(form); });
    update(form);
  });
})();
