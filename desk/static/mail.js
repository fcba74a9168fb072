// The mail room's desk screens: the batch form (scanner feed, keyboard-
// wedge scanner, unit type-ahead, one row per item), locker doors followed
// until they close, the lockers page kept current, the signature pad and
// the print button. Without this
// script every form still posts and the server checks everything again.
(function () {
  'use strict';

  // A door being opened: its state is fetched until it is done or failed.
  function follow(root) {
    root.querySelectorAll('[data-command]').forEach(function (el) {
      var final = function (s) { return s === 'done' || s === 'failed'; };
      if (final(el.dataset.state)) return;
      var label = el.querySelector('.cmd-state');
      function tick() {
        if (!el.isConnected) return; // replaced by a fresher copy
        fetch('/mail/commands/' + el.dataset.command, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (c) {
            if (!c) return;
            if (label) label.textContent = c.state_label + (c.reason_label ? ' · ' + c.reason_label : '');
            el.dataset.state = c.state;
            if (!final(c.state)) { setTimeout(tick, 1000); return; }
            if (el.dataset.reload) location.reload();
          })
          .catch(function () { setTimeout(tick, 3000); });
      }
      setTimeout(tick, 1000);
    });
  }
  follow(document);

  // A page that follows the locker bank (its parts marked data-live, with
  // ids): every few seconds the page is fetched again and those parts are
  // replaced, except one the clerk is using (an action form open, or the
  // focus in it), so doors closed, items collected at the kiosk and
  // commands finished show without a reload and nothing typed is lost.
  var live = document.querySelectorAll('[data-live][id]');
  if (live.length) {
    var busy = function (el) { return el.contains(document.activeElement) || !!el.querySelector('details[open]'); };
    var refresh = function () {
      if (document.hidden) { setTimeout(refresh, 5000); return; }
      fetch(location.href, { credentials: 'same-origin' })
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (html) {
          if (html) {
            var fresh = new DOMParser().parseFromString(html, 'text/html');
            document.querySelectorAll('[data-live][id]').forEach(function (el) {
              var next = fresh.getElementById(el.id);
              if (!next || busy(el) || next.innerHTML === el.innerHTML) return;
              el.replaceWith(next);
              follow(next);
            });
          }
          setTimeout(refresh, 5000);
        })
        .catch(function () { setTimeout(refresh, 10000); });
    };
    setTimeout(refresh, 5000);
  }

  // The demo's scanner: the code goes out on the simulated scanner and
  // comes back through the serial port and the scanner stream, so the
  // batch form in progress stays as it is.
  var demoScan = document.getElementById('demo-scan-form');
  if (demoScan && document.getElementById('scanner-state')) {
    demoScan.addEventListener('submit', function (e) {
      e.preventDefault();
      fetch(demoScan.action, { method: 'POST', credentials: 'same-origin', headers: { 'X-Demo-Fetch': '1' }, body: new URLSearchParams(new FormData(demoScan)) })
        .then(function (r) {
          if (!r.ok) { demoScan.submit(); return; }
          // A new made-up number for the next scan.
          demoScan.elements.code.value = 'SF' + String(Math.floor(Math.random() * 1e13)).padStart(13, '0');
        });
    });
  }

  document.querySelectorAll('[data-print]').forEach(function (b) {
    b.addEventListener('click', function () { window.print(); });
  });

  // Unit type-ahead: units whose code starts with what is typed, or whose
  // residents' names contain it. onPick hears the unit chosen.
  function typeahead(input, onPick) {
    var list = input.parentNode.querySelector('ul.suggest');
    if (!list) return;
    var url = input.dataset.units || (input.form && input.form.dataset.units) || '/mail/units';
    var timer = null, seq = 0, hints = [], active = -1;
    function close() { list.hidden = true; list.innerHTML = ''; hints = []; active = -1; }
    function pick(h) {
      input.value = h.code;
      close();
      if (onPick) onPick(h);
    }
    function show(found) {
      hints = found;
      active = found.length ? 0 : -1;
      list.innerHTML = '';
      found.forEach(function (h, i) {
        var li = document.createElement('li');
        li.setAttribute('role', 'option');
        if (i === active) li.className = 'active';
        var b = document.createElement('button');
        b.type = 'button';
        b.dataset.code = h.code;
        b.textContent = h.code + ' ';
        var who = document.createElement('span');
        who.className = 'muted';
        who.textContent = (h.residents || []).join('、');
        b.appendChild(who);
        b.addEventListener('mousedown', function (e) { e.preventDefault(); }); // keep the focus
        b.addEventListener('click', function () { pick(h); });
        li.appendChild(b);
        list.appendChild(li);
      });
      list.hidden = found.length === 0;
    }
    function mark() {
      list.querySelectorAll('li').forEach(function (li, i) { li.className = i === active ? 'active' : ''; });
    }
    input.addEventListener('input', function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (!q) { close(); return; }
      timer = setTimeout(function () {
        var mine = ++seq;
        fetch(url + '?q=' + encodeURIComponent(q), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (found) { if (mine === seq && document.activeElement === input) show(found || []); })
          .catch(function () {});
      }, 120);
    });
    input.addEventListener('keydown', function (e) {
      if (list.hidden || !hints.length) return;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        active = (active + (e.key === 'ArrowDown' ? 1 : hints.length - 1)) % hints.length;
        mark();
      } else if (e.key === 'Enter' && active >= 0) {
        e.preventDefault();
        e.stopPropagation();
        pick(hints[active]);
      } else if (e.key === 'Escape') {
        close();
      }
    });
    input.addEventListener('blur', function () { setTimeout(close, 150); });
  }

  // Outgoing mail's unit.
  document.querySelectorAll('input.unit[data-units]').forEach(function (u) {
    typeahead(u, function () {
      var next = document.getElementById('sender');
      if (next) next.focus();
    });
  });

  var form = document.getElementById('mail-form');
  if (form) batch(form);

  // The batch form: a row per item; the current row is the one the clerk
  // is in (else the last).
  function batch(form) {
    var tbody = form.querySelector('#rows tbody');
    var current = null;
    function rows() { return tbody.querySelectorAll('tr.mail-row'); }
    function last() { var r = rows(); return r[r.length - 1]; }
    function field(row, cls) { return row.querySelector('.' + cls); }
    function setCurrent(row) {
      if (current) current.classList.remove('current');
      current = row;
      if (row) row.classList.add('current');
    }
    function toggles(row) {
      field(row, 'damage').hidden = field(row, 'condition').value !== 'damaged';
      var locker = field(row, 'storage').value === 'locker';
      field(row, 'slot').hidden = locker;
      field(row, 'size').hidden = !locker;
    }
    function wire(row) {
      toggles(row);
      field(row, 'condition').addEventListener('change', function () { toggles(row); });
      field(row, 'storage').addEventListener('change', function () { toggles(row); });
      typeahead(field(row, 'unit'), function (h) {
        var dl = field(row, 'recipients');
        dl.innerHTML = '';
        (h.residents || []).forEach(function (n) {
          var o = document.createElement('option');
          o.value = n;
          dl.appendChild(o);
        });
        field(row, 'recipient').focus();
      });
    }
    // addRow appends a row like the last one: the same type and place, the
    // rest empty.
    function addRow() {
      var prev = last();
      var n = 0;
      rows().forEach(function (r) { n = Math.max(n, parseInt(r.dataset.index, 10) + 1); });
      var row = prev.cloneNode(true);
      row.dataset.index = n;
      row.classList.remove('has-error', 'current', 'scanned');
      row.querySelectorAll('[name]').forEach(function (el) { el.name = el.name.replace(/-\d+$/, '-' + n); });
      row.querySelectorAll('[list]').forEach(function (el) { el.setAttribute('list', el.getAttribute('list').replace(/-\d+$/, '-' + n)); });
      row.querySelectorAll('datalist').forEach(function (el) { el.id = el.id.replace(/-\d+$/, '-' + n); el.innerHTML = ''; });
      ['tracking', 'unit', 'recipient', 'damage-note'].forEach(function (c) { field(row, c).value = ''; });
      ['type', 'storage', 'slot', 'size'].forEach(function (c) { field(row, c).value = field(prev, c).value; });
      field(row, 'condition').value = 'ok';
      field(row, 'countersigned').checked = false;
      field(row, 'row-msg').innerHTML = '';
      var list = row.querySelector('ul.suggest');
      list.innerHTML = '';
      list.hidden = true;
      tbody.appendChild(row);
      wire(row);
      setCurrent(row);
      return row;
    }
    // scanned puts a code in the current row's tracking number (a new row
    // if that one has one already) and moves on to the unit.
    function scanned(code) {
      var row = current || last();
      if (field(row, 'tracking').value.trim() !== '') row = last();
      if (field(row, 'tracking').value.trim() !== '') row = addRow();
      field(row, 'tracking').value = code;
      setCurrent(row);
      row.classList.add('scanned');
      field(row, 'unit').focus();
    }
    rows().forEach(wire);
    setCurrent(last());
    tbody.addEventListener('focusin', function (e) {
      var row = e.target.closest('tr.mail-row');
      if (row && row !== current) setCurrent(row);
    });
    // Enter: from the tracking number (a wedge scanner ends its code with
    // it) to the unit; from elsewhere in a row, the next item. Never a
    // submission by accident.
    tbody.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter' || e.defaultPrevented || e.target.tagName === 'BUTTON') return;
      e.preventDefault();
      var row = e.target.closest('tr.mail-row');
      if (e.target.classList.contains('tracking')) {
        if (e.target.value.trim() !== '') { row.classList.add('scanned'); field(row, 'unit').focus(); }
        return;
      }
      var next = row === last() ? addRow() : row.nextElementSibling;
      field(next, 'tracking').focus();
    });
    // Implicit submission comes with the keypress (a browser driven
    // key by key sends it apart from the keydown): none here either.
    form.addEventListener('keypress', function (e) {
      if (e.key === 'Enter' && e.target.tagName === 'INPUT') e.preventDefault();
    });
    document.getElementById('next').addEventListener('click', function (e) {
      e.preventDefault();
      field(addRow(), 'tracking').focus();
    });
    document.getElementById('carrier').addEventListener('keydown', function (e) {
      if (e.key !== 'Enter') return;
      e.preventDefault();
      field(current || last(), 'tracking').focus();
    });
    var first = field(current, 'tracking');
    if (!document.getElementById('carrier').value) document.getElementById('carrier').focus();
    else first.focus();

    var state = document.getElementById('scanner-state');
    if (form.dataset.scans && window.EventSource) {
      var es = new EventSource(form.dataset.scans);
      es.onopen = function () { state.textContent = state.dataset.live; state.dataset.on = '1'; };
      es.onerror = function () { state.textContent = state.dataset.off; delete state.dataset.on; };
      es.onmessage = function (m) {
        try { scanned(JSON.parse(m.data).code); } catch (err) { /* not a code */ }
      };
      window.addEventListener('pagehide', function () { es.close(); });
    }
  }

  var pad = document.getElementById('signature-pad');
  if (pad) signaturePad(pad);

  // The signature pad: drawn with a finger, a stylus or the mouse (pointer
  // events), posted as a PNG data URL.
  function signaturePad(canvas) {
    var input = document.getElementById('signature');
    var ctx = canvas.getContext('2d');
    var drawing = false, drawn = false, lastPt = null;
    function blank() {
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.lineWidth = 2.5;
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      ctx.strokeStyle = '#111';
      drawn = false;
      input.value = '';
    }
    function at(e) {
      var r = canvas.getBoundingClientRect();
      return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
    }
    function save() { if (drawn) input.value = canvas.toDataURL('image/png'); }
    var kept = input.value;
    blank();
    if (kept.indexOf('data:image/png;base64,') === 0) { // the form came back: keep what was signed
      var img = new Image();
      img.onload = function () { ctx.drawImage(img, 0, 0); drawn = true; save(); };
      img.src = kept;
    }
    canvas.addEventListener('pointerdown', function (e) {
      drawing = true;
      lastPt = at(e);
      try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic pointer */ }
      ctx.beginPath();
      ctx.arc(lastPt.x, lastPt.y, 1, 0, 2 * Math.PI);
      ctx.fillStyle = '#111';
      ctx.fill();
      drawn = true;
      e.preventDefault();
    });
    canvas.addEventListener('pointermove', function (e) {
      if (!drawing) return;
      var p = at(e);
      ctx.beginPath();
      ctx.moveTo(lastPt.x, lastPt.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      lastPt = p;
      e.preventDefault();
    });
    ['pointerup', 'pointercancel', 'pointerleave'].forEach(function (t) {
      canvas.addEventListener(t, function (e) {
        try { if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId); } catch (err) { /* gone */ }
        if (!drawing) return;
        drawing = false;
        save();
      });
    });
    document.getElementById('signature-clear').addEventListener('click', blank);
    canvas.closest('form').addEventListener('submit', save);
  }
})();
