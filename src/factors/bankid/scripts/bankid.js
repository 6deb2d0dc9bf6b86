// The BankID page: "BankID on this device" opens the app by its autostart link; "BankID on another
// device" shows the animated QR code. Every second the page asks the server for the order's state:
// the message for BankID's hint code and the QR code of this second (computed on the server, which
// alone holds the QR secret). When BankID says complete, the page continues the sign-in; when the
// person leaves the page, the order is cancelled at BankID (navigator.sendBeacon).
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
  var same = document.getElementById('bankid-same');
  var other = document.getElementById('bankid-other');
  var again = document.getElementById('bankid-again');
  var mode = 'qr';
  var finished = false;

  // With this script the person chooses first (BankID's RFA20); without it both are shown.
  qrBox.hidden = true;
  if (doneForm) document.getElementById(doneForm).hidden = true;
  other.addEventListener('click', function () {
    mode = 'qr';
    qrBox.hidden = false;
    other.hidden = true;
  });
  if (same)
    same.addEventListener('click', function () {
      mode = 'same';
      qrBox.hidden = true;
      other.hidden = false;
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
    document.getElementById('bankid-choices').style.display = 'none';
    document.getElementById('bankid-choose').hidden = true;
    qrBox.hidden = true;
    again.hidden = false;
  }

  function poll() {
    if (finished) return;
    fetch(statusUrl + '?mode=' + mode, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) {
        return response.ok ? response.json() : { status: 'failed' };
      })
      .then(function (body) {
        if (finished) return;
        if (body.status === 'verified') return done();
        if (body.status === 'failed') return failed(body.message);
        if (body.message) message.textContent = body.message;
        showQr(body.qr);
        setTimeout(poll, 1000);
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
