// The BankID page, as BankID's guidelines ask: two equal ways, "BankID on this device" (the app opened
// by its autostart link) and "Mobile BankID on another device" (the animated QR code); on a phone or
// tablet the first is the default, on a computer the QR code is shown at once. Every second the page
// asks the server for the order's state: the message for BankID's hint code and the QR code of this
// second (computed on the server, which alone holds the QR secret). No status is shown before the
// person has chosen a way (or BankID reports the app, which is a choice made by scanning). When BankID
// says complete, the page continues; when the person leaves, the order is cancelled (sendBeacon).
(function () {
  var box = document.getElementById('bankid');
  if (!box) return;
  var statusUrl = box.getAttribute('data-status-url');
  var doneUrl = box.getAttribute('data-done-url');
  var cancelUrl = box.getAttribute('data-cancel-url');
  var doneForm = box.getAttribute('data-done-form');
  var csrf = box.getAttribute('data-csrf');
  var message = document.getElementById('bankid-message');
  var qrBox = document.getElementById('bankid-qr-box');
  var choices = document.getElementById('bankid-choices');
  var same = document.getElementById('bankid-same');
  var other = document.getElementById('bankid-other');
  var again = document.getElementById('bankid-again');
  var mode = box.getAttribute('data-default') === 'same' ? 'same' : 'qr';
  var chosen = false;
  var finished = false;
  // The hints of an order no app has picked up yet: before a choice these are not shown.
  var WAITING = { outstandingTransaction: true, noClient: true };

  // An iPad that reports itself as a Mac (iPadOS): a tablet, so the app on this device comes first.
  if (mode === 'qr' && same && /Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1) {
    mode = 'same';
    same.href = same.href.replace(/^bankid:\/\/\//, 'https://app.bankid.com/');
    choices.insertBefore(same, choices.firstChild);
  }

  function mark(chosenOne) {
    if (same) same.className = chosenOne === same ? 'button primary' : 'button';
    other.className = chosenOne === other ? 'primary' : '';
  }

  function choose(newMode) {
    mode = newMode;
    chosen = true;
    message.textContent = '';
    qrBox.hidden = mode !== 'qr';
    mark(mode === 'qr' ? other : same);
  }

  other.hidden = false;
  qrBox.hidden = mode !== 'qr';
  mark(mode === 'qr' ? other : same);
  if (doneForm) document.getElementById(doneForm).hidden = true;
  other.addEventListener('click', function () {
    choose('qr');
  });
  if (same)
    same.addEventListener('click', function () {
      choose('same');
    });

  function showQr(src) {
    if (!src) return;
    var img = document.getElementById('bankid-qr');
    if (!img) {
      img = document.createElement('img');
      img.id = 'bankid-qr';
      img.width = 240;
      img.height = 240;
      qrBox.querySelector('.qr').appendChild(img);
    }
    img.src = src;
  }

  function done() {
    finished = true;
    if (doneForm) document.getElementById(doneForm).submit();
    else window.location.assign(doneUrl);
  }

  function failed(text) {
    finished = true;
    message.textContent = text || '';
    message.setAttribute('role', 'alert');
    choices.style.display = 'none';
    document.getElementById('bankid-choose').hidden = true;
    qrBox.hidden = true;
    again.hidden = false;
  }

  function poll() {
    if (finished) return;
    // A new QR code each second: the next question one second after this one was asked, not answered.
    var askedAt = Date.now();
    fetch(statusUrl + '?mode=' + mode, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) {
        return response.ok ? response.json() : { status: 'failed' };
      })
      .then(function (body) {
        if (finished) return;
        if (body.status === 'verified') return done();
        if (body.status === 'failed') return failed(body.message);
        if (body.hint && !WAITING[body.hint]) chosen = true;
        if (chosen && body.message) message.textContent = body.message;
        showQr(body.qr);
        setTimeout(poll, Math.max(0, 1000 - (Date.now() - askedAt)));
      })
      .catch(function () {
        setTimeout(poll, 3000);
      });
  }
  setTimeout(poll, 1000);

  // Leaving (another method, cancel, closing the tab) gives up the order at BankID.
  window.addEventListener('pagehide', function () {
    if (finished || !navigator.sendBeacon) return;
    finished = true;
    navigator.sendBeacon(cancelUrl, new URLSearchParams({ _csrf: csrf }));
  });
  // Back to this page from the browser's cache: that order was given up; start afresh.
  window.addEventListener('pageshow', function (event) {
    if (event.persisted) window.location.reload();
  });
})();
