/* HTML pages for a browser (imgr.md 2.4): self-contained (no external
 * assets), with the JSON embedded safely: '<', '>' and '&' are written as
 * \u escapes so no data can close the <script> element, and names shown
 * in markup are HTML-escaped (the original pasted both raw). */
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"

typedef struct sb {
  char *p;
  size_t len, cap;
  bool oom;
} sb;

static void put(sb *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 4096;
    while (nc < b->len + n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->oom = true;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(sb *b, const char *s) { put(b, s, strlen(s)); }

static void put_html(sb *b, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<': puts_(b, "&lt;"); break;
    case '>': puts_(b, "&gt;"); break;
    case '&': puts_(b, "&amp;"); break;
    case '"': puts_(b, "&quot;"); break;
    case '\'': puts_(b, "&#39;"); break;
    default: put(b, s, 1);
    }
  }
}

static void put_script_json(sb *b, json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
  if (!s) {
    b->oom = true;
    return;
  }
  for (const char *p = s; *p; p++) {
    if (*p == '<') puts_(b, "\\u003c");
    else if (*p == '>') puts_(b, "\\u003e");
    else if (*p == '&') puts_(b, "\\u0026");
    else put(b, p, 1);
  }
  free(s);
}

static const char STYLE[] =
    "body{font-family:sans-serif;margin:0}nav{background:#222;padding:.6em 1em}"
    "nav a{color:#ddd;margin-right:1.2em;text-decoration:none}nav span{color:#888;float:right}"
    "main{padding:1em}table{border-collapse:collapse;margin:.4em 0}"
    "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4}tr.link{cursor:pointer}tr.link:hover{background:#eef}"
    ".card{display:inline-block;border:1px solid #ccc;padding:1em;margin:.5em}";

/* Renders the embedded JSON: objects as key/value tables, arrays of objects
 * as tables with a header row; volume lists and inode tables link on. */
static const char SCRIPT[] =
    "function el(t,x){var e=document.createElement(t);if(x!==undefined)e.textContent=x;return e}"
    "function render(v,rowLink){if(v===null||typeof v!=='object')return el('span',String(v));"
    "if(Array.isArray(v)){if(v.length&&typeof v[0]==='object'&&v[0]!==null){"
    "var t=el('table'),h=el('tr');Object.keys(v[0]).forEach(function(k){h.appendChild(el('th',k))});"
    "t.appendChild(h);v.forEach(function(r){var tr=el('tr');Object.keys(v[0]).forEach(function(k){"
    "var td=el('td');td.appendChild(render(r[k]));tr.appendChild(td)});"
    "var u=rowLink&&rowLink(r);if(u){tr.className='link';tr.onclick=function(){location.href=u}}"
    "t.appendChild(tr)});return t}return el('span',v.join(', '))}"
    "var t=el('table');Object.keys(v).forEach(function(k){var tr=el('tr');tr.appendChild(el('th',k));"
    "var td=el('td');td.appendChild(render(v[k],k==='InodeTable'?inodeLink:null));tr.appendChild(td);"
    "t.appendChild(tr)});return t}"
    "function inodeLink(r){return location.pathname.replace(/\\/$/,'')+'/inode/'+r.InodeNumber}"
    "function volLink(r){return '/volume/'+encodeURIComponent(r.Name)}"
    "var m=document.getElementById('data');"
    "if(KIND!=='index')m.appendChild(render(DATA,KIND==='volumeList'?volLink:null));";

char *imgr_html_page(const char *kind, const char *title, json_t *data, const char *extra) {
  sb b = {0};
  puts_(&b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
  put_html(&b, title);
  puts_(&b, "</title><style>");
  puts_(&b, STYLE);
  puts_(&b, "</style></head><body><nav><a href=\"/\">Home</a><a href=\"/config\">Config</a>"
            "<a href=\"/stats\">Stats</a><a href=\"/volume\">Volumes</a><span>Version ");
  put_html(&b, PFS_VERSION);
  puts_(&b, "</span></nav><main><h1>");
  put_html(&b, !strcmp(kind, "index") ? "ProxyFS imgr" : title);
  puts_(&b, "</h1>");
  if (!strcmp(kind, "index")) {
    puts_(&b, "<div class=\"card\"><a href=\"/config\">Config</a><p>The effective configuration</p></div>"
              "<div class=\"card\"><a href=\"/stats\">Stats</a><p>Statistics (text; /metrics for Prometheus)</p></div>"
              "<div class=\"card\"><a href=\"/volume\">Volumes</a><p>Served volumes</p></div>");
  }
  if (extra && !strcmp(kind, "inode")) {
    puts_(&b, "<p><a href=\"/volume/");
    put_html(&b, extra);
    puts_(&b, "\">Back to the volume</a></p>");
  }
  puts_(&b, "<div id=\"data\"></div></main><script>var KIND=\"");
  puts_(&b, kind); /* a fixed identifier chosen by the caller */
  puts_(&b, "\";var DATA=");
  put_script_json(&b, data);
  puts_(&b, ";");
  puts_(&b, SCRIPT);
  puts_(&b, "</script></body></html>");
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}
