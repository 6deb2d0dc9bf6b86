// The email-link waiting page: asks whether the link was opened in another tab of this browser (the
// server holds each question up to 20 s and answers as soon as the link is opened, on whichever node),
// and continues the sign-in by itself when it was. Without JavaScript the page
// refreshes itself instead (see the <noscript> in the template).
(function () {
  var wait = document.getElementById('wait');
  if (!wait) return;
  var url = wait.getAttribute('data-status-url');
  var form = document.getElementById(wait.getAttribute('data-continue-form'));
  var stopped = false;
  // Once the person submits a form of this page (the code, "I have opened the link", resend,
  // cancel), a poll answered afterwards must not submit the continue form over it.
  document.addEventListener('submit', function () {
    stopped = true;
  });
  function poll() {
    if (stopped) return;
    fetch(url + '?wait=20', { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) {
        return response.ok ? response.json() : { status: 'gone' };
      })
      .then(function (body) {
        if (stopped) return;
        if (body.status === 'verified') {
          stopped = true;
          form.submit();
        } else if (body.status === 'pending') {
          setTimeout(poll, 250);
        }
      })
      .catch(function () {
        setTimeout(poll, 5000);
      });
  }
  setTimeout(poll, 500);
})();
