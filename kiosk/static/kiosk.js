// The kiosk's pages: the keypad, the bills' total, and the timers — idle
// (the session ends and the screen clears), a waiting page asking again,
// the receipt going back to the start. History is replaced so Back shows
// nothing of the last owner.
(function () {
  var body = document.body;
  var end = document.getElementById('end');
  if (history.replaceState) history.replaceState(null, '', location.pathname);

  // The network gone: say so (the page cannot load anything meanwhile).
  var net = document.getElementById('offline');
  if (net) {
    var show = function () { net.hidden = navigator.onLine; };
    window.addEventListener('online', show);
    window.addEventListener('offline', show);
    show();
  }

  // Idle.
  if (end && body.dataset.session) {
    var idle = parseInt(body.dataset.idle, 10) * 1000, t;
    var arm = function () { clearTimeout(t); t = setTimeout(function () { end.submit(); }, idle); };
    ['pointerdown', 'keydown', 'touchstart'].forEach(function (e) { document.addEventListener(e, arm, {passive: true}); });
    arm();
  }
  document.querySelectorAll('[data-end]').forEach(function (b) {
    b.addEventListener('click', function () { if (end) end.submit(); });
  });

  // Waiting and receipt pages.
  if (body.dataset.reload) setTimeout(function () { location.replace(location.pathname); }, parseInt(body.dataset.reload, 10));
  if (body.dataset.redirect) setTimeout(function () { location.replace(body.dataset.redirect); }, parseInt(body.dataset.after, 10));

  // A card tapped on this kiosk's reader: the server says where to go.
  var tapErr = document.getElementById('tap-error');
  if (tapErr && window.EventSource) {
    var es = new EventSource('/kiosk/taps');
    es.onmessage = function (m) {
      var d = JSON.parse(m.data);
      if (d.go) { es.close(); location.replace(d.go); }
      else if (d.error) { tapErr.textContent = d.error; tapErr.hidden = false; }
    };
  }

  // The keypad types into the field last touched.
  var pad = document.getElementById('keypad');
  if (pad) {
    var field = document.getElementById('unit') || document.getElementById('pin');
    ['unit', 'pin'].forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) return;
      el.addEventListener('focus', function () { field = el; });
      el.addEventListener('pointerdown', function () { field = el; });
    });
    pad.addEventListener('click', function (e) {
      var k = e.target.dataset.k; if (!k) return;
      if (k === 'del') field.value = field.value.slice(0, -1);
      else if (!field.maxLength || field.maxLength < 0 || field.value.length < field.maxLength) field.value += k;
    });
  }

  // The bills' total follows the bills ticked; one press pays once.
  var form = document.getElementById('pay');
  if (form) {
    var yuan = function (f) { return String(Math.floor(f / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',') + '.' + String(f % 100).padStart(2, '0'); };
    form.addEventListener('change', function () {
      var sum = 0;
      form.querySelectorAll('input[name=bill]:checked').forEach(function (c) { sum += parseInt(c.dataset.fen, 10); });
      document.getElementById('total').value = yuan(sum);
    });
    form.addEventListener('submit', function () {
      var b = document.getElementById('pay-card');
      setTimeout(function () { b.disabled = true; if (b.dataset.wait) b.textContent = b.dataset.wait; }, 0);
    });
  }
})();
