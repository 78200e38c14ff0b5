// The first kiln UI page: the machine list, read from /api/v1/machines with cursor paging.
// The API key lives in localStorage under this name; the full UI with login is a later issue.
const KEY = 'kiln.apiKey';
const PAGE = 50;

const $ = (id) => document.getElementById(id);
let cursors = [null]; // cursors[i] fetches page i; going back reuses the cursor that led there
let page = 0;

function apiKey() {
  return localStorage.getItem(KEY);
}

function showKeyForm(message = '') {
  $('key-form').hidden = false;
  $('machines').hidden = true;
  $('forget').hidden = true;
  $('key-error').textContent = message;
}

function filters() {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData($('filters'))) if (String(v).trim()) q.set(k, String(v).trim());
  return q;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text ?? '-';
  if (cls) td.className = cls;
  return td;
}

function render(items) {
  const body = $('rows');
  body.replaceChildren();
  for (const m of items) {
    const tr = document.createElement('tr');
    const status = document.createElement('span');
    status.className = `status ${m.status}`;
    status.textContent = m.status;
    const st = document.createElement('td');
    st.append(status);
    tr.append(
      cell(m.system_id, 'mono'),
      cell(m.hostname),
      st,
      cell(m.architecture),
      cell(m.boot_mac, 'mono'),
      cell(m.power_type),
      cell(m.zone),
      cell(m.pool),
      cell(m.tags.join(', ')),
    );
    body.append(tr);
  }
  if (items.length === 0) {
    const tr = document.createElement('tr');
    const td = cell('No machines match.');
    td.colSpan = 9;
    tr.append(td);
    body.append(tr);
  }
}

async function load() {
  const q = filters();
  q.set('limit', String(PAGE));
  if (cursors[page]) q.set('cursor', cursors[page]);
  $('error').textContent = '';
  let res;
  try {
    res = await fetch(`/api/v1/machines?${q}`, { headers: { authorization: `Bearer ${apiKey()}` } });
  } catch (err) {
    $('error').textContent = `Cannot reach the region: ${err.message}`;
    return;
  }
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) {
    localStorage.removeItem(KEY);
    showKeyForm(body.error?.message ?? 'The API key was refused.');
    return;
  }
  if (!res.ok) {
    $('error').textContent = body.error?.message ?? `HTTP ${res.status}`;
    return;
  }
  $('key-form').hidden = true;
  $('machines').hidden = false;
  $('forget').hidden = false;
  render(body.items);
  cursors[page + 1] = body.next;
  $('prev').disabled = page === 0;
  $('next').disabled = !body.next;
  $('page-info').textContent = `Page ${page + 1}`;
}

function restart() {
  cursors = [null];
  page = 0;
  load();
}

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  localStorage.setItem(KEY, $('key').value.trim());
  $('key').value = '';
  restart();
});
$('filters').addEventListener('submit', (e) => {
  e.preventDefault();
  restart();
});
$('prev').addEventListener('click', () => {
  if (page > 0) page--;
  load();
});
$('next').addEventListener('click', () => {
  if (cursors[page + 1]) page++;
  load();
});
$('forget').addEventListener('click', () => {
  localStorage.removeItem(KEY);
  showKeyForm();
});

if (apiKey()) load();
else showKeyForm();
