// The cashier's payment form: the amount follows the bills ticked, the
// change follows the cash handed over, and the fields shown follow the
// method. The server checks everything again.
(function () {
  var form = document.getElementById('pay');
  if (!form) return;
  var amount = document.getElementById('amount');
  var tendered = document.getElementById('tendered');
  var change = document.getElementById('change');
  function fen(s) {
    s = (s || '').replace(/[,\s¥]/g, '');
    if (!/^\d+(\.\d{1,2})?$/.test(s)) return NaN;
    var p = s.split('.');
    return parseInt(p[0], 10) * 100 + (p[1] ? parseInt((p[1] + '0').slice(0, 2), 10) : 0);
  }
  function yuan(f) {
    var s = String(Math.floor(f / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return s + '.' + String(f % 100).padStart(2, '0');
  }
  function method() {
    var m = form.querySelector('input[name=method]:checked');
    return m ? m.value : 'cash';
  }
  function update() {
    var m = method();
    form.querySelectorAll('.for-cash').forEach(function (e) { e.hidden = m !== 'cash'; });
    form.querySelectorAll('.for-transfer').forEach(function (e) { e.hidden = m !== 'transfer'; });
    form.querySelectorAll('.for-card').forEach(function (e) { e.hidden = m !== 'card'; });
    var a = fen(amount.value), t = fen(tendered.value);
    change.value = (!isNaN(a) && !isNaN(t) && t >= a) ? yuan(t - a) : '—';
  }
  form.querySelectorAll('input[name=bill]').forEach(function (b) {
    b.addEventListener('change', function () {
      var sum = 0;
      form.querySelectorAll('input[name=bill]:checked').forEach(function (c) { sum += parseInt(c.dataset.fen, 10); });
      amount.value = yuan(sum);
      update();
    });
  });
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  form.addEventListener('submit', function () {
    var b = document.getElementById('pay-button');
    setTimeout(function () { b.disabled = true; }, 0); // one submission; the key guards the rest
  });
  update();
})();
