// The desk code's own script (served from its folder at /assets/desk-code.js).
document.documentElement.dataset.deskCode = 'ready';
