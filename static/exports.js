// The supervisor page's exports: fills the day picker with the days the
// server keeps (from /api/calls/days), today chosen. The form and the link
// work without it: the server answers a day it does not keep with a 404.
'use strict';

(function () {
  const day = document.getElementById('export-day');
  const range = document.getElementById('export-range');
  if (!day) return;
  fetch('/api/calls/days', { credentials: 'same-origin' })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((kept) => {
      if (!kept.today) return;
      day.min = kept.first_day;
      day.max = kept.today;
      if (!day.value) day.value = kept.today;
      if (range) range.textContent = `Days kept: ${kept.first_day} to ${kept.today} (${kept.timezone}).`;
    })
    .catch(() => {
      if (range) range.textContent = 'Exports need the store (the server runs with --data-dir).';
    });
}());
