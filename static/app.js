/* etcdboard front-end behaviour. Vanilla JS, no build step; loaded with `defer` after htmx.
 *
 * - Every listener is delegated from `document`, so it keeps working after htmx swaps and
 *   htmx history restores (which replace the body's HTML).
 * - URLs only ever come from the DOM (href / data-* / option values): the app may be
 *   mounted under a sub-path, so nothing here builds a path.
 * - No inline styles, no eval, no inline handlers: works under a strict CSP.
 * - Live updates: one EventSource per page (the URL is [data-watch-url]); a change refreshes the
 *   tree levels it affects and marks an open key view stale. Editors (edit.js) hear it as the
 *   document event "etcdboard:change" / "etcdboard:resync".
 */
(function () {
  "use strict";
  const doc = document;
  const root = doc.documentElement;
  root.classList.add("js"); // lets CSS hide .nojs-only fallbacks
  const NAV = ".tree, .list";        // containers with roving keyboard focus
  const ROW = "a.row";               // the focusable rows inside them
  const FETCH_TIMEOUT_MS = 15000;    // "never hang": give up and say so
  let modality = "pointer";          // last input kind: "key" or "pointer"

  /* ---------- helpers ------------------------------------------------ */
  const isVisible = (n) => n.getClientRects().length > 0; // false inside [hidden]
  const isTyping = (n) => !!n && (n.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(n.tagName));
  const navOf = (n) => (n && n.closest ? n.closest(NAV) : null);
  const rowOf = (li) => (li ? li.querySelector(":scope > a.row") : null);
  const childList = (li) => li.querySelector(":scope > ul.children");
  const isDir = (li) => !!li && li.matches("li.node[aria-expanded]");
  const isOpen = (li) => li.getAttribute("aria-expanded") === "true";
  const visibleRows = (nav) => Array.from(nav.querySelectorAll(ROW)).filter(isVisible);
  const currentNav = () => Array.from(doc.querySelectorAll(NAV)).find(isVisible) || null;
  const query = (sel) => { try { return sel ? doc.querySelector(sel) : null; } catch (_) { return null; } };
  const el = (tag, cls, text) => {
    const e = doc.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  };
  // In-flight requests (ours + htmx) drive the page-wide progress line (html.loading).
  let inflight = 0;
  const busy = (delta) => root.classList.toggle("loading", (inflight = Math.max(0, inflight + delta)) > 0);

  /* ---------- roving focus ------------------------------------------- */
  // Only one row per container is in the Tab order (tabindex=0); arrows/j/k move it.
  function setRoving(nav, row) {
    nav.querySelectorAll('a.row[tabindex="0"]').forEach((r) => { if (r !== row) r.tabIndex = -1; });
    row.tabIndex = 0;
  }
  function rovingRow(nav) {
    const cur = nav.querySelector('a.row[tabindex="0"]');
    if (cur && isVisible(cur)) return cur;
    const sel = nav.querySelector("a.row.selected");
    if (sel && isVisible(sel)) return sel;
    return visibleRows(nav)[0] || sel || nav.querySelector(ROW);
  }
  function initRoving(nav) {
    nav.querySelectorAll("a.row:not([tabindex])").forEach((r) => { r.tabIndex = -1; });
    const cur = rovingRow(nav);
    if (cur) setRoving(nav, cur);
  }
  const initAll = () => doc.querySelectorAll(NAV).forEach(initRoving);
  function focusRow(row) {
    if (navOf(row)) setRoving(navOf(row), row);
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
  function move(delta, from) {
    const nav = navOf(from) || currentNav();
    const rows = nav ? visibleRows(nav) : [];
    if (!rows.length) return;
    let i = rows.indexOf(from);
    // Focus elsewhere: after opening a key (the Tab stop is the open key), continue from it, so
    // `j` after Enter goes to the next key; otherwise (a fresh page) land on the Tab stop itself
    // instead of skipping past it.
    if (i < 0) {
      const stop = rovingRow(nav);
      i = rows.indexOf(stop);
      if (i >= 0 && !stop.matches("[aria-current]")) { focusRow(stop); return; }
    }
    if (i < 0) { focusRow(rows[delta > 0 ? 0 : rows.length - 1]); return; }
    focusRow(rows[Math.max(0, Math.min(rows.length - 1, i + delta))]);
  }
  // The selected leaf carries .selected and aria-current="true" (as the server renders it).
  function select(row) {
    doc.querySelectorAll("a.row.selected, a.row[aria-current]").forEach((r) => {
      if (r !== row) { r.classList.remove("selected"); r.removeAttribute("aria-current"); }
    });
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
    if (navOf(row)) setRoving(navOf(row), row);
  }

  /* ---------- fetching fragments ------------------------------------- */
  // The server answers these URLs with bare <li> elements. Anything else (a login page
  // after a session expired, a proxy's error page) is reported, never inserted.
  function parseItems(html) {
    const t = doc.createElement("template");
    t.innerHTML = html;
    const items = [];
    for (const n of Array.from(t.content.childNodes)) {
      if (n.nodeType === 1 && n.tagName === "LI") items.push(n);
      else if (n.nodeType === 1 || (n.nodeType === 3 && n.textContent.trim())) throw new Error("unexpected response");
    }
    return items;
  }
  // What a refused fragment request says: the server's banner (e.g. why etcd refused), else
  // the bare status.
  async function failure(res) {
    let said = "";
    try {
      const body = await res.text();
      if ((res.headers.get("content-type") || "").includes("json")) {
        const error = JSON.parse(body).error; // the API's {"error": "..."}
        said = typeof error === "string" ? error.trim() : "";
      } else {
        const t = doc.createElement("template");
        t.innerHTML = body;
        const banner = t.content.querySelector(".banner");
        said = banner ? banner.textContent.trim() : "";
      }
    } catch (_) { /* no readable body */ }
    return said ? `${res.status}: ${said}` : `${res.status} ${res.statusText}`.trim();
  }
  // Fetches `url` as the page's own requests do: within FETCH_TIMEOUT_MS ("never hang"), with
  // `busyEl` marked busy and the page-wide progress line on, and `read` of the response done in
  // that time too; fetch's own errors are said in words.
  async function request(url, busyEl, init, read) {
    busyEl.setAttribute("aria-busy", "true");
    busy(1);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      return await read(await fetch(url, { ...init, credentials: "same-origin", signal: ctl.signal }));
    } catch (err) {
      if (ctl.signal.aborted) throw new Error(`no answer after ${FETCH_TIMEOUT_MS / 1000} s`);
      throw err instanceof TypeError ? new Error("network error") : err;
    } finally {
      clearTimeout(timer);
      busyEl.removeAttribute("aria-busy");
      busy(-1);
    }
  }
  const load = (url, busyEl) => request(url, busyEl, { headers: { "HX-Request": "true" } }, async (res) => {
    if (!res.ok) throw new Error(await failure(res));
    return parseItems(await res.text());
  });
  // New rows: let htmx wire their hx-* attributes, and keep them out of the Tab order.
  function afterInsert(nav, items) {
    if (window.htmx) items.forEach((n) => window.htmx.process(n));
    if (nav) initRoving(nav);
  }

  /* ---------- tree --------------------------------------------------- */
  const show = (li, ul) => { ul.hidden = false; li.setAttribute("aria-expanded", "true"); };
  function expand(li) {
    const ul = childList(li);
    if (!ul || li.getAttribute("aria-busy") === "true") return;
    const url = li.getAttribute("data-children-url");
    // Already loaded (by us, or rendered open by the server with data-loaded): just show.
    if (!url || li.getAttribute("data-loaded") === "true" ||
        Array.from(ul.children).some((c) => !c.classList.contains("error"))) { show(li, ul); return; }
    ul.replaceChildren(); // drop a previous error row
    load(url, li).then((items) => {
      if (!items.length) items = [el("li", "empty", "empty")];
      ul.append(...items);
      li.setAttribute("data-loaded", "true");
      show(li, ul);
      afterInsert(navOf(li), items);
    }, (err) => {
      const item = el("li", "error");
      item.setAttribute("role", "treeitem");
      const a = el("a", "row retry");
      a.href = rowOf(li) ? rowOf(li).href : "#"; // Ctrl-click: the full-page fallback
      a.tabIndex = -1;
      a.append(el("span", "name", `could not load: ${err.message}`), el("span", "badge", "retry"));
      item.append(a);
      ul.append(item);
      show(li, ul);
    });
  }
  function collapse(li) {
    const ul = childList(li);
    const row = rowOf(li);
    if (!ul || !row) return;
    const hadFocus = ul.contains(doc.activeElement);
    ul.hidden = true;
    li.setAttribute("aria-expanded", "false");
    // Never leave the Tab stop (or focus) on a row that just became hidden.
    if (hadFocus) focusRow(row);
    else if (ul.querySelector('a.row[tabindex="0"]')) setRoving(navOf(li), row);
  }

  /* ---------- load more ---------------------------------------------- */
  function loadMore(li, link) {
    if (li.getAttribute("aria-busy") === "true") return;
    const nav = navOf(li);
    const hadFocus = li.contains(doc.activeElement);
    if (!link.dataset.label) link.dataset.label = link.textContent;
    load(link.getAttribute("data-more-url"), li).then((items) => {
      li.replaceWith(...items);
      afterInsert(nav, items);
      const first = items.map((n) => n.querySelector(ROW)).find(Boolean);
      if (hadFocus && first) focusRow(first);
    }, (err) => {
      li.classList.add("error"); // the same link retries
      link.textContent = `${link.dataset.label} failed: ${err.message} — retry`;
    });
  }

  /* ---------- copy --------------------------------------------------- */
  const copyTimers = new WeakMap();
  function flash(btn, label, ok) {
    if (!btn.dataset.label) btn.dataset.label = btn.textContent;
    btn.textContent = label;
    btn.classList.toggle("copied", ok);
    btn.setAttribute("aria-live", "polite"); // screen readers hear "copied"
    clearTimeout(copyTimers.get(btn));
    // A failure stays long enough to be read (it may be the server's sentence).
    copyTimers.set(btn, setTimeout(() => { btn.textContent = btn.dataset.label; btn.classList.remove("copied"); }, ok ? 1500 : 6000));
  }
  // execCommand fallback for non-secure contexts (plain http to a host other than localhost).
  function legacyCopy(text, near) {
    const ta = Object.assign(el("textarea", "copy-buffer"), { value: text, readOnly: true, tabIndex: -1 });
    const prev = doc.activeElement;
    (near.closest("dialog") || doc.body).append(ta); // outside an open modal everything is inert
    ta.select();
    let ok = false;
    try { ok = doc.execCommand("copy"); } catch (_) { /* unsupported */ }
    ta.remove();
    if (prev && prev.focus) prev.focus({ preventScroll: true });
    return ok;
  }
  // The exact text of base64 bytes, or null when they are not UTF-8.
  function b64Text(b64) {
    try {
      const bin = atob(b64.trim());
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    } catch (_) { return null; }
  }
  // base64 of bytes, in slices (String.fromCharCode takes a bounded number of arguments).
  function bytesB64(bytes) {
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }
  // A value too large to be carried in the page: fetch its bytes (the download URL) and give them
  // as base64 or as text, but only while they are still the revision the view shows.
  function fetchCopy(btn) {
    return request(btn.getAttribute("data-copy-url"), btn, {}, async (res) => {
      if (res.status === 404) throw new Error("deleted since shown");
      if (!res.ok) throw new Error(await failure(res));
      const view = btn.closest("article.key");
      const shown = view && view.getAttribute("data-mod-revision");
      if (shown && res.headers.get("X-Etcd-Mod-Revision") !== shown) throw new Error("changed since shown: reload");
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (btn.getAttribute("data-copy-as") === "base64") return bytesB64(bytes);
      try {
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch (_) { throw new Error("not text: copy base64"); }
    });
  }
  function copyFetched(btn) {
    const text = fetchCopy(btn);
    const done = (ok) => flash(btn, ok ? "copied" : "copy failed", ok);
    const failed = (err) => flash(btn, err.message, false);
    const legacy = () => text.then((t) => done(legacyCopy(t, btn)), failed);
    if (!(navigator.clipboard && window.isSecureContext)) { legacy(); return; }
    // A ClipboardItem given a promise keeps the click's permission to write while the bytes
    // arrive (Safari asks for that); elsewhere, write the text once it is here.
    const write = window.ClipboardItem && navigator.clipboard.write
      ? navigator.clipboard.write([new ClipboardItem({ "text/plain": text.then((t) => new Blob([t], { type: "text/plain" })) })])
      : text.then((t) => navigator.clipboard.writeText(t));
    write.then(() => done(true), () => text.then(() => legacy(), failed));
  }
  function copy(btn) {
    if (btn.hasAttribute("data-copy-url")) { copyFetched(btn); return; }
    const target = query(btn.getAttribute("data-copy-target"));
    if (!target) { flash(btn, "nothing to copy", false); return; }
    const valueOf = (n) => (n instanceof HTMLInputElement || n instanceof HTMLTextAreaElement ? n.value : n.textContent);
    // The stored bytes when the page carries them (what is shown may differ: escapes, a CR the
    // HTML parser dropped); what is shown when they are not text.
    const exact = btn.hasAttribute("data-copy-decode") ? query(btn.getAttribute("data-copy-decode")) : null;
    const text = (exact && b64Text(valueOf(exact))) ?? valueOf(target);
    const done = (ok) => flash(btn, ok ? "copied" : "copy failed", ok);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => done(true), () => done(legacyCopy(text, btn)));
    } else done(legacyCopy(text, btn));
  }
  function openDialog(sel) {
    const d = query(sel);
    if (d && d.tagName === "DIALOG" && !d.open) d.showModal();
  }

  /* ---------- events ------------------------------------------------- */
  doc.addEventListener("pointerdown", () => { modality = "pointer"; }, true);
  // Tab, click or script focusing a row makes it its container's Tab stop.
  doc.addEventListener("focusin", (e) => {
    const nav = e.target instanceof Element && e.target.matches(ROW) ? navOf(e.target) : null;
    if (nav) setRoving(nav, e.target);
  });
  doc.addEventListener("click", (e) => {
    const t = e.target instanceof Element ? e.target : null;
    if (!t) return;
    // A click on a modal's backdrop lands on the <dialog> itself, outside its box: close.
    if (t.tagName === "DIALOG" && t.open) {
      const r = t.getBoundingClientRect();
      if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) t.close();
      return;
    }
    const btn = t.closest("button.copy[data-copy-target], button.copy[data-copy-url]");
    if (btn) { e.preventDefault(); copy(btn); return; }
    const opener = t.closest("[data-open-dialog], #help-btn");
    if (opener) { e.preventDefault(); openDialog(opener.getAttribute("data-open-dialog") || "dialog#help"); return; }
    const row = t.closest(ROW);
    // Ctrl/Cmd/Shift-click: let the browser open the href (the full-page fallback).
    if (!row || !navOf(row) || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.button !== 0) return;
    const li = row.parentElement;
    if (row.classList.contains("retry")) {
      e.preventDefault();
      const dir = li.parentElement && li.parentElement.closest("li.node");
      if (dir) { li.remove(); focusRow(rowOf(dir)); expand(dir); }
    } else if (row.hasAttribute("data-more-url") && li.classList.contains("more")) {
      e.preventDefault();
      loadMore(li, row);
    } else if (isDir(li) && childList(li)) {
      e.preventDefault(); // JS handles it; without JS the href is a full page
      setRoving(navOf(row), row);
      if (isOpen(li)) collapse(li); else expand(li);
    } else if (row.matches(".leaf, [hx-get]")) {
      select(row); // a leaf: htmx (hx-get on the row) does the loading
    } // anything else (e.g. li.gap's link) is a plain link

  });
  doc.addEventListener("change", (e) => {
    const s = e.target;
    if (!(s instanceof HTMLSelectElement) || s.id !== "cluster-picker" || !s.value) return;
    const url = new URL(s.value, location.href);
    if (url.origin === location.origin) location.assign(url.href);
  });
  doc.addEventListener("keydown", (e) => {
    modality = "key";
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = doc.activeElement;
    if (e.key === "Escape") {
      const help = doc.getElementById("help");
      // Other modal dialogs close natively (so their own cancel handlers still run).
      if (help && help.open) { e.preventDefault(); help.close(); }
      else if (t && (t.id === "search-input" || t.type === "search")) { e.preventDefault(); t.blur(); }
      return;
    }
    if (isTyping(t) || doc.querySelector("dialog[open]")) return;
    const onRow = !!(t && t.matches && t.matches(ROW) && navOf(t));
    const arrows = onRow || !t || t === doc.body || t === root; // don't steal scrolling elsewhere
    const li = onRow ? t.parentElement : null;
    let handled = true;
    switch (e.key) {
      case "/": { const s = doc.getElementById("search-input"); if (s) { s.focus(); s.select(); } else handled = false; break; }
      case "?": openDialog("dialog#help"); break;
      // e: edit the open key, n: new key (whatever the page offers under data-shortcut).
      case "e": case "n": {
        const target = Array.from(doc.querySelectorAll(`[data-shortcut="${e.key}"]`)).find(isVisible);
        if (target) target.click(); else handled = false;
        break;
      }
      case "j": move(1, t); break;
      case "k": move(-1, t); break;
      case "ArrowDown": if (arrows) move(1, t); else handled = false; break;
      case "ArrowUp": if (arrows) move(-1, t); else handled = false; break;
      case "ArrowRight": {
        if (!isDir(li)) { handled = false; break; }
        if (!isOpen(li)) { expand(li); break; }
        const first = Array.from(childList(li).querySelectorAll(ROW)).find(isVisible);
        if (first) focusRow(first);
        break;
      }
      case "ArrowLeft": {
        if (!li) { handled = false; break; }
        if (isDir(li) && isOpen(li)) { collapse(li); break; }
        const parent = li.parentElement && li.parentElement.closest("li.node");
        if (parent && navOf(parent) === navOf(li)) focusRow(rowOf(parent));
        break;
      }
      // Enter needs nothing: on a focused row link the browser itself fires a click.
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });

  /* ---------- htmx integration --------------------------------------- */
  // Mark the request's target busy (progress bar + fade) and count it for the page line.
  const busyTargets = new WeakMap();
  doc.addEventListener("htmx:beforeRequest", (e) => {
    const d = e.detail || {};
    if (!d.xhr || busyTargets.has(d.xhr)) return;
    if (d.target instanceof Element) d.target.setAttribute("aria-busy", "true");
    busyTargets.set(d.xhr, d.target);
    busy(1);
  });
  doc.addEventListener("htmx:afterRequest", (e) => {
    const d = e.detail || {};
    if (d.xhr && busyTargets.has(d.xhr)) { // afterRequest may fire twice for one request
      const target = busyTargets.get(d.xhr);
      busyTargets.delete(d.xhr);
      if (target instanceof Element) target.removeAttribute("aria-busy");
      busy(-1);
    }
    const elt = e.target;
    if (d.successful !== false && elt instanceof Element && elt.matches(ROW) && navOf(elt)) select(elt);
  });
  // htmx does not swap error responses by default: say so in the target instead of
  // leaving stale content that looks current.
  function requestFailed(e, why) {
    const target = e.detail && e.detail.target;
    if (!(target instanceof Element) || !target.isConnected || target.matches("a, span, button, input, select, textarea")) return;
    target.querySelectorAll(":scope > .banner.js-error").forEach((b) => b.remove());
    const b = el("div", "banner error js-error");
    b.setAttribute("role", "alert");
    b.append(el("strong", null, "Could not load"), el("span", null, why));
    target.prepend(b);
  }
  doc.addEventListener("htmx:responseError", (e) => requestFailed(e, `${e.detail.xhr.status} ${e.detail.xhr.statusText}`.trim()));
  doc.addEventListener("htmx:sendError", (e) => requestFailed(e, "network error"));
  doc.addEventListener("htmx:timeout", (e) => requestFailed(e, "no answer in time"));
  // Did a keyboard action cause this swap? A click synthesised from Enter/Space has
  // detail 0; a form submit counts when the last input was a key. Polling and other
  // triggers never move focus.
  function fromKeyboard(ev) {
    if (!ev || !ev.isTrusted) return false;
    return ev.type === "click" ? ev.detail === 0 : ev.type === "submit" && modality === "key";
  }
  const focusedSwaps = new WeakSet();
  doc.addEventListener("htmx:afterSwap", (e) => {
    const d = e.detail || {};
    if (!(d.target instanceof Element) || d.target.id !== "keyview") return;
    if (d.xhr) { if (focusedSwaps.has(d.xhr)) return; focusedSwaps.add(d.xhr); }
    const h1 = d.target.querySelector("h1");
    if (!h1 || !fromKeyboard(d.requestConfig && d.requestConfig.triggeringEvent)) return;
    if (!h1.hasAttribute("tabindex")) h1.tabIndex = -1;
    h1.focus();
  });
  // A key view loaded without a click on its row (after a save, a reload, a live refresh)
  // selects that row when the tree shows it.
  function syncSelection() {
    const art = doc.querySelector("#keyview article.key[data-view-url]");
    if (!art) return;
    const url = art.getAttribute("data-view-url");
    const row = Array.from(doc.querySelectorAll(".tree a.row[hx-get]")).find((r) => r.getAttribute("hx-get") === url);
    if (row && !row.classList.contains("selected")) select(row);
  }
  doc.addEventListener("htmx:afterSwap", (e) => {
    const t = e.detail && e.detail.target;
    if (t instanceof Element && t.id === "keyview") syncSelection();
  });
  // Swapped-in lists need their rows taken out of the Tab order again.
  doc.addEventListener("htmx:afterSettle", initAll);
  // htmx snapshots the page for history while a request is still in flight, so a restored
  // page can carry stale aria-busy marks; nothing in the restored DOM is loading.
  doc.addEventListener("htmx:historyRestore", () => {
    doc.querySelectorAll("[aria-busy]").forEach((n) => n.removeAttribute("aria-busy"));
    initAll();
  });

  /* ---------- top bar sections --------------------------------------- */
  doc.querySelectorAll("nav.sections a[href]").forEach((a) => {
    if (a.pathname === location.pathname) a.setAttribute("aria-current", "page");
  });

  /* ---------- live updates ------------------------------------------- */
  // Byte strings: keys and prefixes are compared as "binary strings" (one char per byte), which
  // is what atob() returns for key_b64 and what percentBytes() returns for a URL parameter.
  function percentBytes(raw) {
    return raw.replace(/\+/g, " ").replace(/%([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  }
  // The exact bytes of parameter `name` in a URL the server rendered (null when absent).
  function paramBytes(url, name) {
    const q = url.indexOf("?");
    if (q < 0) return null;
    for (const part of url.slice(q + 1).split("#")[0].split("&")) {
      const eq = part.indexOf("=");
      const n = eq < 0 ? part : part.slice(0, eq);
      if (n === name) return percentBytes(eq < 0 ? "" : part.slice(eq + 1));
    }
    return null;
  }
  const utf8Bytes = (text) => Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(b)).join("");
  const LIVE_DEBOUNCE_MS = 500;   // gather a burst of changes into one refetch
  const LIVE_MIN_GAP_MS = 1000;   // at most one refetch per level per second
  const liveRoot = doc.querySelector("[data-watch-url]");
  const levelTimers = new Map();  // level URL -> { timer, last }
  let source = null;
  let readies = 0;
  let retryTimer = null;
  let slowTimer = null;

  function liveStatus(state, text, title) {
    const s = doc.querySelector("[data-live-status]");
    if (!s) return;
    s.setAttribute("data-state", state);
    s.textContent = text;
    s.title = title;
  }
  // Every tree level that is showing rows: the top one and each loaded directory.
  function liveLevels() {
    const top = doc.querySelector("ul.tree[data-level-url]");
    if (!top) return [];
    const levels = [{ ul: top, li: null, url: top.getAttribute("data-level-url") }];
    top.querySelectorAll('li.node[data-children-url][data-loaded="true"]').forEach((li) => {
      const ul = childList(li);
      if (ul) levels.push({ ul, li, url: li.getAttribute("data-children-url") });
    });
    return levels.map((l) => Object.assign(l, {
      prefix: paramBytes(l.url, "prefix") || "",
      flat: paramBytes(l.url, "mode") === "flat",
    }));
  }
  // Whether `level` already has the row a put of `key` would show.
  function levelHasRow(level, key, sep) {
    const rest = key.slice(level.prefix.length);
    const cut = level.flat || !sep ? -1 : rest.indexOf(sep);
    for (const li of Array.from(level.ul.children)) {
      if (cut >= 0) {
        const url = li.getAttribute("data-children-url");
        if (url && paramBytes(url, "prefix") === level.prefix + rest.slice(0, cut + sep.length)) return true;
      } else {
        const row = rowOf(li);
        const url = row && row.getAttribute("hx-get");
        if (url && paramBytes(url, "key") === key) return true;
      }
    }
    return false;
  }
  // A level that shows only part of its rows ("load more", or started further down).
  const isPartial = (ul) => !!ul.querySelector(":scope > li.more, :scope > li.gap");
  function onTreeChange(key, deleted) {
    const top = doc.querySelector("ul.tree[data-level-url]");
    if (!top) return;
    const sep = utf8Bytes(top.getAttribute("data-sep") || "");
    for (const level of liveLevels()) {
      if (!key.startsWith(level.prefix) || isPartial(level.ul)) continue;
      if (level.li && !isOpen(level.li)) { invalidate(level.li); continue; }
      if (deleted || !levelHasRow(level, key, sep)) scheduleLevel(level.url);
    }
  }
  // A hidden (collapsed) level is dropped; expanding it again loads it fresh.
  function invalidate(li) {
    const ul = childList(li);
    if (!ul || li.getAttribute("aria-busy") === "true") return;
    ul.replaceChildren();
    li.removeAttribute("data-loaded");
  }
  function scheduleLevel(url) {
    const st = levelTimers.get(url) || { timer: null, last: 0 };
    levelTimers.set(url, st);
    if (st.timer) return;
    const now = Date.now();
    const at = Math.max(now + LIVE_DEBOUNCE_MS, st.last + LIVE_MIN_GAP_MS);
    st.timer = setTimeout(() => { st.timer = null; st.last = Date.now(); refreshLevel(url); }, at - now);
  }
  function findLevel(url) {
    return liveLevels().find((l) => l.url === url) || null;
  }
  async function refreshLevel(url) {
    const level = findLevel(url);
    if (!level) return;
    if (level.li && !isOpen(level.li)) { invalidate(level.li); return; }
    if ((level.li || level.ul).getAttribute("aria-busy") === "true") { scheduleLevel(url); return; }
    let items;
    try {
      const res = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin", signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!res.ok) return; // a failed background refresh leaves the rows as they were
      items = parseItems(await res.text());
    } catch (_) { return; }
    const now = findLevel(url); // the tree may have changed while we waited
    if (now) mergeLevel(now.ul, items);
  }
  // Replaces a level's rows, keeping expanded subtrees, the selected row and keyboard focus.
  function mergeLevel(ul, items) {
    const nav = navOf(ul);
    const focused = ul.contains(doc.activeElement) ? doc.activeElement : null;
    const focusedHref = focused && focused.matches(ROW) ? focused.getAttribute("href") : null;
    const oldDirs = new Map();
    const selected = new Set();
    for (const li of Array.from(ul.children)) {
      const url = li.getAttribute("data-children-url");
      if (url && li.getAttribute("data-loaded") === "true") oldDirs.set(url, li);
      const row = rowOf(li);
      if (row && row.classList.contains("selected")) selected.add(row.getAttribute("hx-get"));
    }
    const fresh = [];
    const next = items.map((li) => {
      const kept = oldDirs.get(li.getAttribute("data-children-url") || "");
      if (kept) return kept;
      const row = rowOf(li);
      if (row && selected.has(row.getAttribute("hx-get"))) {
        row.classList.add("selected");
        row.setAttribute("aria-current", "true");
      }
      fresh.push(li);
      return li;
    });
    if (!next.length && ul !== doc.querySelector("ul.tree[data-level-url]")) next.push(el("li", "empty", "empty"));
    ul.replaceChildren(...next);
    afterInsert(nav, fresh);
    syncSelection();
    if (focused && focused.isConnected) focused.focus({ preventScroll: true });
    else if (focusedHref) {
      const again = Array.from(ul.querySelectorAll(ROW)).find((r) => r.getAttribute("href") === focusedHref);
      if (again) focusRow(again);
    }
  }
  // The open key view (or editor) learns that its key changed.
  function markKeyView(d) {
    const art = doc.querySelector("#keyview article.key[data-key-b64]");
    if (!art || art.getAttribute("data-key-b64") !== d.key_b64) return;
    if (d.revision <= Number(art.getAttribute("data-revision") || 0)) return; // already shown
    const leased = !!art.querySelector("dd.ttl");
    staleBanner(art, d.type === "delete"
      ? (leased
        ? `Deleted at revision ${d.revision}: its lease expired, or someone deleted it.`
        : `Deleted by someone else at revision ${d.revision}.`)
      : `Changed by someone else at revision ${d.revision}.`);
  }
  function staleBanner(art, text) {
    const slot = art.querySelector(".live-note");
    if (!slot) return;
    const b = el("div", "banner warn");
    const reload = el("button", "btn small", "reload");
    reload.type = "button";
    reload.setAttribute("data-reload-view", art.getAttribute("data-view-url") || "");
    const t = el("span", "banner-text");
    t.append(el("strong", null, "Stale."), " ", text);
    b.append(t, reload);
    slot.replaceChildren(b);
  }
  function resync() {
    for (const level of liveLevels()) {
      if (level.li && !isOpen(level.li)) invalidate(level.li);
      else scheduleLevel(level.url);
    }
    const art = doc.querySelector("#keyview article.key[data-key-b64]");
    if (art) staleBanner(art, "Live updates were interrupted; this view may be out of date.");
    doc.dispatchEvent(new CustomEvent("etcdboard:resync"));
  }
  function onChange(ev) {
    let d;
    try { d = JSON.parse(ev.data); } catch (_) { return; }
    if (!d || typeof d.key_b64 !== "string") return;
    let key;
    try { key = atob(d.key_b64); } catch (_) { return; }
    markKeyView(d);
    onTreeChange(key, d.type === "delete");
    doc.dispatchEvent(new CustomEvent("etcdboard:change", { detail: d }));
  }
  function openLive() {
    const url = liveRoot && liveRoot.getAttribute("data-watch-url");
    if (!url || source || typeof EventSource === "undefined") return;
    clearTimeout(retryTimer);
    readies = 0;
    liveStatus("connecting", "connecting…", "opening live updates");
    const es = new EventSource(url);
    source = es;
    // Never a spinner for ever: say so when the watch is not there after a while.
    let opened = false;
    clearTimeout(slowTimer);
    slowTimer = setTimeout(() => {
      if (source === es && !opened) liveStatus("off", "no answer", "live updates: no answer after 10 s; still trying");
    }, 10000);
    es.addEventListener("ready", () => {
      opened = true;
      liveStatus("on", "live", "changes appear as they happen");
      // A reconnect may have missed changes: reload what is shown.
      if (++readies > 1) resync();
    });
    es.addEventListener("paused", (e) => {
      let why = "";
      try { why = JSON.parse(e.data).reason || ""; } catch (_) { /* keep it short */ }
      liveStatus("off", "paused", `live updates paused: no member can watch (${why}); retrying`);
    });
    es.addEventListener("resumed", () => {
      if (opened) liveStatus("on", "live", "changes appear as they happen");
    });
    // etcd's roles refuse the watch: asking again would be refused too, so stop here.
    es.addEventListener("denied", () => {
      if (source !== es) return;
      closeLive();
      liveStatus("off", "not allowed", "live updates: the etcd user etcdboard signs in as may not watch everything shown here (its etcd roles); filter by a prefix it may read");
    });
    es.addEventListener("change", onChange);
    es.addEventListener("resync", resync);
    es.addEventListener("error", () => {
      if (source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. etcd unavailable): try again later ourselves.
        source = null;
        liveStatus("off", "offline", "live updates stopped; retrying in 10 s");
        retryTimer = setTimeout(() => { openLive(); }, 10000);
      } else {
        liveStatus("off", "reconnecting…", "live updates lost the connection; retrying");
      }
    });
  }
  function closeLive() {
    clearTimeout(retryTimer);
    clearTimeout(slowTimer);
    if (source) { source.close(); source = null; }
  }
  window.addEventListener("pagehide", closeLive);
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    openLive();
    resync(); // back from the page cache: anything may have changed meanwhile
  });
  doc.addEventListener("click", (e) => {
    const btn = e.target instanceof Element ? e.target.closest("button[data-reload-view]") : null;
    if (!btn) return;
    const url = btn.getAttribute("data-reload-view");
    if (url && window.htmx) window.htmx.ajax("GET", url, { target: "#keyview" });
  });
  openLive();
  // The open key's lease TTL counts down; at 0 etcd deletes the key (the live update says so).
  setInterval(() => {
    for (const dd of doc.querySelectorAll("#keyview dd.ttl")) {
      const m = /^(\d+) s$/.exec(dd.textContent.trim());
      if (!m) continue;
      const left = Number(m[1]) - 1;
      dd.textContent = left > 0 ? `${left} s` : "expired";
    }
  }, 1000);
  initAll();
  // The sign-in page on a plain-HTTP address (not loopback): the browser would drop the Secure
  // session cookie, so say so before a password is typed.
  const insecure = doc.getElementById("insecure-context");
  if (insecure && !window.isSecureContext) insecure.hidden = false;
  // Full-page load of a deep key: bring its selected row into the tree pane's view
  // (only the pane scrolls, never the page).
  const sel = doc.querySelector(".tree-pane a.row.selected");
  const pane = sel && sel.closest(".tree-pane");
  if (pane) {
    const d = sel.getBoundingClientRect().top - pane.getBoundingClientRect().top;
    if (d < 40 || d > pane.clientHeight - 30) pane.scrollTop += d - pane.clientHeight / 3;
  }
})();
