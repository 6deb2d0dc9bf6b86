// Nyckel Authenticator, the browser side. On the sign-in page (#push): shows the seconds left, asks
// the server whether the phone answered (each question held up to 20 s and answered the moment the
// phone does), and continues the sign-in by itself once
// approved (or says why not: denied, wrong number, expired). On "Add a mobile device" (#device-enrol):
// reloads once the phone has registered. Leaving the sign-in page gives up the request.
(function () {
  function poll(url, every, onBody) {
    var stopped = false;
    function once() {
      if (stopped) return;
      fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (response) {
          return response.ok ? response.json() : { status: 'failed' };
        })
        .then(function (body) {
          if (!stopped && onBody(body) !== false) setTimeout(once, every);
        })
        .catch(function () {
          setTimeout(once, every * 4);
        });
    }
    setTimeout(once, every);
    return function () {
      stopped = true;
    };
  }

  var enrol = document.getElementById('device-enrol');
  if (enrol) {
    poll(enrol.getAttribute('data-status-url'), 1000, function (body) {
      if (body.status === 'waiting') return true;
      window.location.reload();
      return false;
    });
  }

  var box = document.getElementById('push');
  if (!box) return;
  var csrf = box.getAttribute('data-csrf');
  var cancelUrl = box.getAttribute('data-cancel-url');
  var doneUrl = box.getAttribute('data-done-url');
  var countdown = document.getElementById('push-countdown');
  var countdownText = box.getAttribute('data-countdown');
  var message = document.getElementById('push-message');
  var left = Number(box.getAttribute('data-expires-in')) || 0;
  var finished = false;

  // The page switches at the deadline by itself: it does not wait for the server to say so.
  var timer = setInterval(function () {
    left = Math.max(0, left - 1);
    countdown.textContent = countdownText.replace('%s', String(left));
    if (left === 0 && !finished) failed(box.getAttribute('data-expired'));
  }, 1000);

  function failed(text) {
    finished = true;
    clearInterval(timer);
    message.textContent = text || '';
    message.setAttribute('role', 'alert');
    countdown.hidden = true;
    document.getElementById('push-number').parentNode.hidden = true;
    document.getElementById('push-instruction').hidden = true;
    // "Send a new request" becomes the thing to do (TDC's "Retry mobile").
    var again = document.querySelector('#push-again a');
    if (again) {
      again.className = 'button primary';
      again.focus();
    }
  }

  poll(box.getAttribute('data-status-url') + '?wait=20', 100, function (body) {
    if (finished) return false;
    if (body.status === 'verified') {
      finished = true;
      window.location.assign(doneUrl);
      return false;
    }
    if (body.status === 'failed') {
      failed(body.message);
      return false;
    }
    if (body.message) message.textContent = body.message;
    if (typeof body.expiresIn === 'number') left = body.expiresIn;
    return true;
  });

  window.addEventListener('pagehide', function () {
    if (finished || !navigator.sendBeacon) return;
    finished = true;
    navigator.sendBeacon(cancelUrl, new URLSearchParams({ _csrf: csrf }));
  });
  window.addEventListener('pageshow', function (event) {
    if (event.persisted) window.location.reload();
  });
})();
