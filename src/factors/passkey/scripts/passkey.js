// Passkey ceremonies for any hosted page (sign-in, enrolment, the account pages). Load
// /assets/simplewebauthn-browser.js first, then this file (both deferred; the CSP allows only
// same-origin scripts, so nothing is inline). The contract with the page:
//
//   <form method="post" action="…" data-passkey="register|authenticate"
//         data-passkey-error="Text shown when the ceremony fails or is cancelled">
//     <script type="application/json" data-passkey-options>{…options JSON from the server…}</script>
//     <input type="hidden" name="credential">
//     <div data-passkey-message hidden></div>
//     … any other fields (_csrf, a name for the passkey, …) and a submit button …
//   </form>
//
// On submit the script prevents the normal submission, runs startRegistration({ optionsJSON })
// (register: PublicKeyCredentialCreationOptionsJSON) or startAuthentication({ optionsJSON })
// (authenticate: PublicKeyCredentialRequestOptionsJSON), writes the JSON of the result into the
// form's `credential` input and submits the form. When the ceremony fails (cancelled, not allowed,
// no WebAuthn in this browser) it shows `data-passkey-error` in the form's [data-passkey-message]
// element (unhidden) and leaves the form as it was, so the person can try again.
// Without JavaScript nothing happens here: the page should say that passkeys need JavaScript.
(function () {
  var webauthn = window.SimpleWebAuthnBrowser;

  function showError(form) {
    var message = form.querySelector('[data-passkey-message]');
    if (!message) return;
    message.textContent = form.getAttribute('data-passkey-error') || 'The passkey could not be used.';
    message.hidden = false;
    if (typeof message.focus === 'function') {
      if (!message.hasAttribute('tabindex')) message.setAttribute('tabindex', '-1');
      message.focus();
    }
  }

  function clearError(form) {
    var message = form.querySelector('[data-passkey-message]');
    if (message) {
      message.hidden = true;
      message.textContent = '';
    }
  }

  function readOptions(form) {
    var element = form.querySelector('script[data-passkey-options]');
    if (!element) return undefined;
    try {
      return JSON.parse(element.textContent || '');
    } catch (error) {
      return undefined;
    }
  }

  function attach(form) {
    var running = false;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (running) return;
      clearError(form);
      var mode = form.getAttribute('data-passkey');
      var optionsJSON = readOptions(form);
      var field = form.querySelector('input[name="credential"]');
      if (!webauthn || !webauthn.browserSupportsWebAuthn() || !optionsJSON || !field || (mode !== 'register' && mode !== 'authenticate')) {
        showError(form);
        return;
      }
      running = true;
      var ceremony =
        mode === 'register' ? webauthn.startRegistration({ optionsJSON: optionsJSON }) : webauthn.startAuthentication({ optionsJSON: optionsJSON });
      ceremony.then(
        function (result) {
          field.value = JSON.stringify(result);
          // The prototype's submit: a control named "submit" would shadow form.submit. It fires no
          // submit event, so this handler does not run again.
          HTMLFormElement.prototype.submit.call(form);
        },
        function () {
          running = false;
          showError(form);
        },
      );
    });
  }

  var forms = document.querySelectorAll('form[data-passkey]');
  for (var i = 0; i < forms.length; i++) attach(forms[i]);
})();
