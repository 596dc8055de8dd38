"""The fleet as one self-contained page: inline CSS and script, nothing fetched at view time.

The host table is also the finding matrix (a column per finding id) and shows the drift
facts, odd values marked; a click on a heading sorts by it. `#click=KEY,KEY` in the URL
clicks those headings on load: the same handler, so a headless browser can test sorting.
"""

from __future__ import annotations

from html import escape

from caffedoc import __version__
from caffedoc.fleet.facts import FACTS
from caffedoc.fleet.merge import RANK, Fleet
from caffedoc.fleet.text import MARK

LISTED = 50  # host names listed in a findings or drift cell before "and N more"
STATUS_RANK = {"ok": 0, "warning": 1, "error": 2}

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.6em 0 .4em}
.summary span{display:inline-block;padding:.2em .7em;margin-right:.4em;border-radius:1em}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
#hosts td:first-child{white-space:nowrap;font-weight:600}
thead th{background:#f3f4f6;position:sticky;top:0}
#hosts thead th{cursor:pointer;user-select:none;white-space:nowrap}
#hosts thead th[aria-sort=ascending]::after{content:" ▲"}
#hosts thead th[aria-sort=descending]::after{content:" ▼"}
.ok{background:#dafbe1}.warning{background:#fff8c5}.error{background:#ffebe9}
.info{background:#ddf4ff}td.mark{text-align:center}.odd{background:#ffd8b5;font-weight:600}
.note{color:#57606a}code{font-size:12px}
"""

SCRIPT = """
(function(){
const table=document.getElementById('hosts');const body=table.tBodies[0];
function key(row,i){const c=row.cells[i];
  return c.dataset.sort!==undefined?c.dataset.sort:c.textContent;}
function sort(th){
  const i=th.cellIndex;const asc=th.getAttribute('aria-sort')!=='ascending';
  for(const h of table.tHead.rows[0].cells)h.removeAttribute('aria-sort');
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  const rows=Array.from(body.rows);
  rows.sort(function(a,b){const x=key(a,i),y=key(b,i);  // 3.9 before 3.11
    const r=x.localeCompare(y,undefined,{numeric:true});return asc?r:-r;});
  body.append(...rows);
  document.body.dataset.sorted=th.dataset.key+':'+(asc?'ascending':'descending');
}
for(const th of table.tHead.rows[0].cells)th.addEventListener('click',function(){sort(th);});
const m=location.hash.match(/^#click=([\\w,.-]+)$/);
if(m)for(const k of m[1].split(',')){
  const th=table.querySelector('th[data-key="'+k+'"]');if(th)th.click();}
})();
"""


def _names(hosts: tuple[str, ...]) -> str:
    shown = ", ".join(escape(h) for h in hosts[:LISTED])
    more = len(hosts) - LISTED
    return shown + (f" <span class=note>and {more} more</span>" if more > 0 else "")


def _host_table(fleet: Fleet) -> list[str]:
    ids = [s.id for s in fleet.findings]
    odd: dict[str, set[str | None]] = {d.key: {v for v, _ in d.odd} for d in fleet.drift}
    head = ['<th data-key="host">host</th>', '<th data-key="status">status</th>']
    head += [f'<th data-key="{escape(i)}" title="finding id">{escape(i)}</th>' for i in ids]
    shown = [(k, label) for k, label, _ in FACTS if any(h.facts.get(k) for h in fleet.hosts)]
    head += [f'<th data-key="{key}">{escape(label)}</th>' for key, label in shown]
    head.append('<th data-key="time">report time</th>')
    out = ['<table id="hosts"><thead><tr>', *head, "</tr></thead><tbody>"]
    for h in fleet.hosts:
        worst: dict[str, str] = {}
        for fid, sev, _ in h.findings:
            if RANK[sev] >= RANK.get(worst.get(fid, "info"), 0):
                worst[fid] = sev
        cells = [
            f"<td>{escape(h.name)}</td>",
            f'<td class="{h.status}" data-sort="{STATUS_RANK[h.status]}">{h.status}</td>',
        ]
        for fid in ids:
            sev = worst.get(fid)
            cells.append(
                f'<td class="mark {sev}" data-sort="{RANK[sev] + 1}" title="{sev}">{MARK[sev]}</td>'
                if sev
                else '<td class="mark" data-sort="0"></td>'
            )
        for key, _ in shown:
            value = h.facts.get(key)
            cls = ' class="odd"' if key in odd and value in odd[key] else ""
            cells.append(f"<td{cls}>{escape(value) if value is not None else ''}</td>")
        cells.append(f"<td>{escape(h.time or '')}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return out


def render(fleet: Fleet) -> str:
    c = fleet.counts
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>caffedoc fleet report: {len(fleet.hosts)} hosts</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Caffe fleet: {len(fleet.hosts)} hosts</h1>",
        '<p class="summary">'
        f'<span class="ok">{c["ok"]} ok</span>'
        f'<span class="warning">{c["warning"]} with warnings</span>'
        f'<span class="error">{c["error"]} with errors</span>'
        + (
            f'<span class="error">{len(fleet.unreadable)} reports not read</span>'
            if fleet.unreadable
            else ""
        )
        + "</p>",
        "<h2>Hosts and findings</h2>",
        '<p class="note">One column per finding id (✗ error, ! warning, i information) and '
        "per fact found on any host; values that differ from most hosts are marked. Click a "
        "heading to sort.</p>",
        *_host_table(fleet),
        "<h2>Findings by id</h2>",
    ]
    if fleet.findings:
        parts.append(
            "<table><thead><tr><th>id</th><th>worst</th><th>title</th><th>hosts</th>"
            "<th>which</th></tr></thead><tbody>"
        )
        for s in fleet.findings:
            parts.append(
                f"<tr><td><code>{escape(s.id)}</code></td><td class={s.severity}>{s.severity}</td>"
                f"<td>{escape(s.title)}</td><td>{len(s.hosts)}</td><td>{_names(s.hosts)}</td></tr>"
            )
        parts.append("</tbody></table>")
    else:
        parts.append("<p>None on any host.</p>")
    parts.append("<h2>Drift</h2>")
    if fleet.drift:
        parts.append(
            "<table><thead><tr><th>fact</th><th>value</th><th>hosts</th><th>which</th></tr>"
            "</thead><tbody>"
        )
        for d in fleet.drift:
            odd = {v for v, _ in d.odd}
            for n, (value, hosts) in enumerate(d.values):
                label = f'<td rowspan="{len(d.values)}">{escape(d.label)}</td>' if n == 0 else ""
                cls = ' class="odd"' if value in odd else ""
                shown = escape(value) if value is not None else "<i>not found</i>"
                parts.append(
                    f"<tr>{label}<td{cls}>{shown}</td><td>{len(hosts)}</td>"
                    f"<td>{_names(hosts)}</td></tr>"
                )
        parts.append("</tbody></table>")
    else:
        parts.append("<p>None: every host agrees on every fact shown above.</p>")
    if fleet.unreadable:
        parts.append("<h2>Reports not read</h2><ul>")
        parts += [f"<li><code>{escape(f)}</code>: {escape(e)}</li>" for f, e in fleet.unreadable]
        parts.append("</ul>")
    made = f"Made by caffedoc {__version__} from <code>check --json</code> reports."
    parts.append(f'<p class="note">{made}</p>')
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)
