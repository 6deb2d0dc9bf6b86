// The email-link waiting page: asks every two seconds whether the link was opened in another tab of
// this browser, and continues the sign-in by itself when it was. Without JavaScript the page
// refreshes itself instead (see the <noscript> in the template).
(function () {
  var wait = document.getElementById('wait');
  if (!wait) return;
  var url = wait.getAttribute('data-status-url');
  var form = document.getElementById(wait.getAttribute('data-continue-form'));
  var stopped = false;
  // Once the person submits a form of this page (the code, "I have opened the link", resend,
  // cancel), a poll answered afterwards must not submit the continue form over it.
  document.addEventListener('submit', function () { stopped = true; });
  function poll() {
    if (stopped) return;
    fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : { status: 'gone' }; })
      .then(function (body) {
        if (stopped) return;
        if (body.status === 'verified') { stopped = true; form.submit(); }
        else if (body.status === 'pending') { setTimeout(poll, 2000); }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
