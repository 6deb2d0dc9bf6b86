// Copy and Print on the recovery-codes page. Without JavaScript the buttons stay hidden and the
// codes can still be selected or downloaded.
(function () {
  var copy = document.querySelector('[data-copy]');
  var print = document.querySelector('[data-print]');
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener('click', function () {
      var text = document.getElementById(copy.getAttribute('data-copy')).textContent;
      navigator.clipboard.writeText(text).then(function () {
        copy.textContent = copy.getAttribute('data-copied');
      });
    });
  }
  if (print) {
    print.hidden = false;
    print.addEventListener('click', function () {
      window.print();
    });
  }
})();
