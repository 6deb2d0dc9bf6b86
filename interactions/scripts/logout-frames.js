// After a sign-out, the page that loads each app's front-channel logout URL in a hidden frame: once
// every frame has loaded (the window's load event waits for them), or after at most 3 s for an app
// that does not answer, the browser goes on to where the sign-out leads (the "Continue" link).
(function () {
  var link = document.getElementById('logout-continue');
  if (!link) return;
  var gone = false;
  function go() {
    if (gone) return;
    gone = true;
    window.location.replace(link.href);
  }
  window.addEventListener('load', go);
  setTimeout(go, 3000);
})();
