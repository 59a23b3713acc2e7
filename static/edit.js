/* etcdboard writes from the browser: the value editor (review, save, three-way conflict view),
 * deleting a key or a prefix, restoring a version, revoking a lease, export and import.
 *
 * - Every write is a fetch() with Content-Type: application/json to the JSON API, a
 *   compare-and-swap on what the user saw; a 409 shows what is there now, nothing is guessed.
 * - URLs come from the DOM only (data-* / href); the script at most appends a query parameter.
 * - Text is put in the page with textContent, never as HTML (keys and values are untrusted).
 * - No inline styles, no eval: the code editor (CodeMirror 5) and js-yaml are loaded on demand
 *   from the URLs the editor fragment names.
 */
(function () {
  "use strict";
  const doc = document;
  const TIMEOUT_MS = 15000; // "never hang": a write that does not answer is reported
  const IMPORT_MS = 10 * 60 * 1000; // an import of a large prefix is a long write, still bounded
  // The server gives a prefix deletion or a lease revocation 0.1 ms per key beyond its etcd
  // timeout (DELETE_TIME_PER_KEY): wait that long too, so its answer is not given up on.
  const DELETE_MS_PER_KEY = 0.1;

  /* ---------- small helpers ---------------------------------------------- */
  const el = (tag, cls, text) => {
    const e = doc.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  };
  const button = (label, cls) => {
    const b = el("button", cls, label);
    b.type = "button";
    return b;
  };
  const qsAll = (root, sel) => Array.from(root.querySelectorAll(sel));
  // <div class="banner KIND"><span><strong>Lead.</strong> text</span> …extras</div>
  function banner(kind, lead, text, ...extras) {
    const b = el("div", `banner ${kind}`);
    const t = el("span", "banner-text");
    t.append(el("strong", null, lead), " ", text);
    b.append(t, ...extras);
    return b;
  }
  const withParam = (url, name, value) => `${url}${url.includes("?") ? "&" : "?"}${name}=${encodeURIComponent(value)}`;

  function b64ToBytes(b64) {
    const bin = atob(b64 || "");
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function bytesToB64(bytes) {
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }
  const utf8 = new TextEncoder();
  function decodeUtf8(bytes) {
    try { return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes); } catch (_) { return null; }
  }
  const sameBytes = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  function toHex(bytes) {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      lines.push(Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, "0")).join(" "));
    }
    return lines.join("\n");
  }
  // "de ad be ef" (any whitespace; pairs may also be written together: "dead beef").
  function parseHex(text) {
    const out = [];
    const lines = text.split("\n");
    for (let n = 0; n < lines.length; n++) {
      for (const tok of lines[n].split(/\s+/).filter(Boolean)) {
        if (!/^([0-9a-fA-F]{2})+$/.test(tok)) return { error: `line ${n + 1}: “${tok.slice(0, 20)}” is not hex bytes (two hex digits each)` };
        for (let i = 0; i < tok.length; i += 2) out.push(parseInt(tok.slice(i, i + 2), 16));
      }
    }
    return { bytes: Uint8Array.from(out) };
  }
  function humanSize(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  }
  // Like the server's display of keys: text as is (controls escaped), other bytes as \xNN.
  function displayBytes(bytes) {
    const text = decodeUtf8(bytes);
    if (text != null) return text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\u{${c.charCodeAt(0).toString(16)}}`));
    return Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
  }

  /* ---------- HTTP ------------------------------------------------------- */
  // Resolves to { status, body } (body: parsed JSON or null) or { status: 0, error } for a
  // network failure or timeout. Never throws, never waits longer than TIMEOUT_MS.
  async function call(method, url, body, contentType, timeoutMs) {
    const limit = timeoutMs || TIMEOUT_MS;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), limit);
    const init = { method, credentials: "same-origin", signal: ctl.signal, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.body = typeof body === "string" || body instanceof Blob ? body : JSON.stringify(body);
      init.headers["Content-Type"] = contentType || "application/json";
    }
    doc.documentElement.classList.add("loading");
    try {
      const res = await fetch(url, init);
      const text = await res.text();
      let json = null;
      try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: a proxy's page */ }
      return { status: res.status, body: json, statusText: res.statusText };
    } catch (_) {
      return { status: 0, error: ctl.signal.aborted ? `no answer after ${limit / 1000} s` : "network error" };
    } finally {
      clearTimeout(timer);
      doc.documentElement.classList.remove("loading");
    }
  }
  // The server's own words for a failure, or the status.
  function why(res) {
    if (res.status === 0) return res.error;
    if (res.body && typeof res.body.error === "string") return res.body.error;
    return `${res.status} ${res.statusText || ""}`.trim();
  }

  /* ---------- modal dialogs ---------------------------------------------- */
  // A <dialog> built per use. `onConfirm(ctx)` runs on the confirm button and returns true to
  // close; ctx.error(text) shows a message inside, ctx.body is the content element.
  function modal(opts) {
    return new Promise((resolve) => {
      const d = el("dialog", "modal");
      d.setAttribute("aria-labelledby", "modal-title");
      const h = el("h2", null, opts.title);
      h.id = "modal-title";
      const body = el("div", "modal-body");
      const err = el("div", "modal-error");
      err.setAttribute("role", "alert");
      const foot = el("div", "modal-actions");
      const ok = button(opts.confirm || "OK", opts.danger ? "danger-solid" : "primary");
      ok.setAttribute("data-modal-confirm", "");
      const cancel = button(opts.cancel || "cancel");
      foot.append(cancel, ok);
      d.append(h, body, err, foot);
      let confirmed = false;
      const ctx = {
        body,
        dialog: d,
        confirmButton: ok,
        error(text, extra, lead) {
          err.replaceChildren();
          if (!text) return;
          const b = banner("error", lead || "Not done.", text);
          err.append(b);
          if (extra) err.append(extra);
        },
        enable(on) { ok.disabled = !on; },
        close() { confirmed = true; d.close(); },
      };
      if (opts.build) opts.build(ctx);
      cancel.addEventListener("click", () => d.close());
      ok.addEventListener("click", async () => {
        if (ok.disabled) return;
        ok.disabled = true;
        d.setAttribute("aria-busy", "true");
        let done = false;
        try { done = opts.onConfirm ? await opts.onConfirm(ctx) : true; } finally {
          d.removeAttribute("aria-busy");
          if (d.open) ok.disabled = !!(opts.isReady && !opts.isReady(ctx));
        }
        if (done) { confirmed = true; d.close(); }
      });
      d.addEventListener("close", () => { d.remove(); resolve(confirmed); });
      doc.body.append(d);
      d.showModal();
      if (opts.isReady) ok.disabled = !opts.isReady(ctx);
      const first = body.querySelector("input:not([type=hidden])");
      (first || (opts.danger ? cancel : ok)).focus();
    });
  }

  // A change that deletes `n` keys in one etcd step, inside a modal: its wait grows with `n`, and
  // past a second a line in the dialog says what is going on and for how long.
  async function deleting(ctx, n, method, url, body) {
    const note = el("p", "dim", "");
    note.setAttribute("data-deleting", "");
    note.setAttribute("aria-live", "polite");
    const t0 = Date.now();
    const tick = setInterval(() => {
      note.textContent = `Deleting ${n.toLocaleString()} key${n === 1 ? "" : "s"} in one etcd transaction… ${Math.round((Date.now() - t0) / 1000)} s`;
      if (!note.isConnected) ctx.body.append(note);
    }, 1000);
    try {
      return await call(method, url, body, undefined, TIMEOUT_MS + n * DELETE_MS_PER_KEY);
    } finally {
      clearInterval(tick);
      note.remove();
    }
  }

  /* ---------- line diff -------------------------------------------------- */
  // LCS over the lines between the common head and tail; past MAX_CELLS the middle is shown as
  // one removed block and one added block (never quadratic on a huge value).
  const MAX_CELLS = 4e6;
  function lineDiff(oldText, newText) {
    const a = oldText === "" ? [] : oldText.split("\n");
    const b = newText === "" ? [] : newText.split("\n");
    let head = 0;
    while (head < a.length && head < b.length && a[head] === b[head]) head++;
    let tail = 0;
    while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
    const out = a.slice(0, head).map((s) => ({ t: " ", s }));
    const am = a.slice(head, a.length - tail);
    const bm = b.slice(head, b.length - tail);
    if (am.length * bm.length > MAX_CELLS) {
      am.forEach((s) => out.push({ t: "-", s }));
      bm.forEach((s) => out.push({ t: "+", s }));
    } else {
      const n = am.length, m = bm.length;
      const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
      for (let i = n - 1; i >= 0; i--) {
        for (let j = m - 1; j >= 0; j--) lcs[i][j] = am[i] === bm[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
      let i = 0, j = 0;
      while (i < n && j < m) {
        if (am[i] === bm[j]) { out.push({ t: " ", s: am[i] }); i++; j++; }
        else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ t: "-", s: am[i++] });
        else out.push({ t: "+", s: bm[j++] });
      }
      while (i < n) out.push({ t: "-", s: am[i++] });
      while (j < m) out.push({ t: "+", s: bm[j++] });
    }
    a.slice(a.length - tail).forEach((s) => out.push({ t: " ", s }));
    return out;
  }
  // A <pre class="diff"> with long unchanged runs folded to 3 lines of context.
  function diffView(lines) {
    const pre = el("pre", "diff");
    const CONTEXT = 3;
    const changed = lines.map((l) => l.t !== " ");
    const near = (i) => {
      for (let k = Math.max(0, i - CONTEXT); k <= Math.min(lines.length - 1, i + CONTEXT); k++) if (changed[k]) return true;
      return false;
    };
    let skipped = 0;
    const flush = () => {
      if (!skipped) return;
      pre.append(el("span", "dl fold", `… ${skipped} unchanged line${skipped === 1 ? "" : "s"}`), "\n");
      skipped = 0;
    };
    lines.forEach((l, i) => {
      if (l.t === " " && !near(i)) { skipped++; return; }
      flush();
      const line = el("span", `dl ${l.t === "+" ? "add" : l.t === "-" ? "del" : "same"}`);
      line.append(el("span", "sign", l.t), l.s === "" && l.t !== " " ? el("span", "faint empty-line", "(empty line)") : l.s);
      pre.append(line, "\n");
    });
    flush();
    return pre;
  }
  const countChanges = (lines) => ({
    added: lines.filter((l) => l.t === "+").length,
    removed: lines.filter((l) => l.t === "-").length,
  });

  /* ---------- loading the code editor ------------------------------------ */
  const loaded = new Map();
  function loadScript(url) {
    if (!loaded.has(url)) {
      loaded.set(url, new Promise((resolve, reject) => {
        const s = doc.createElement("script");
        s.src = url;
        s.async = false; // keep order: modes after the core
        s.onload = () => resolve();
        s.onerror = () => { loaded.delete(url); reject(new Error(`could not load ${url}`)); };
        doc.head.append(s);
      }));
    }
    return loaded.get(url);
  }
  function loadEditorLibs(art) {
    const core = art.getAttribute("data-cm");
    const modes = (art.getAttribute("data-cm-modes") || "").split(/\s+/).filter(Boolean);
    const yaml = art.getAttribute("data-js-yaml");
    return loadScript(core).then(() => Promise.all([...modes.map(loadScript), yaml ? loadScript(yaml) : null]));
  }

  // The bytes a key label stands for (as domain::format::parse_display on the server): `\\` is a
  // backslash, `\xNN` the byte NN; anything else is its own UTF-8.
  function parseDisplay(text) {
    const src = utf8.encode(text);
    const hex = (c) => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);
    const out = [];
    for (let i = 0; i < src.length; i++) {
      if (src[i] === 92 && src[i + 1] === 92) { out.push(92); i += 1; continue; }
      if (src[i] === 92 && src[i + 1] === 120 && hex(src[i + 2]) >= 0 && hex(src[i + 3]) >= 0) {
        out.push(hex(src[i + 2]) * 16 + hex(src[i + 3]));
        i += 3;
        continue;
      }
      out.push(src[i]);
    }
    return Uint8Array.from(out);
  }

  // `base` (ending in `key=`) naming the key of `k` ({key} or {key_b64}); key_b64 goes as the
  // base64url twin the server reads.
  function withKey(base, k) {
    if (!base) return "";
    if (k.key != null) return base + encodeURIComponent(k.key);
    const url = k.key_b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    return base.replace(/key=$/, "key_b64=") + url;
  }

  /* ---------- the editor ------------------------------------------------- */
  const CM_MODES = { json: { name: "javascript", json: true }, yaml: "yaml", toml: "toml", text: null, hex: null };
  let active = null; // the open Editor, if any

  class Editor {
    constructor(art) {
      this.art = art;
      this.isNew = art.getAttribute("data-editor") === "new";
      this.keyB64 = art.getAttribute("data-key-b64") || "";
      this.base = { bytes: b64ToBytes(art.getAttribute("data-value-b64")), rev: Number(art.getAttribute("data-mod-revision") || 0) };
      this.opened = this.base.rev;
      this.maxBytes = Number(art.getAttribute("data-max-bytes") || 0);
      this.overhead = Number(art.getAttribute("data-request-overhead") || 0);
      this.mode = art.getAttribute("data-mode") || "text";
      this.stage = "edit";
      this.cm = null;
      this.textarea = art.querySelector("textarea.ed-text");
      this.select = art.querySelector("select.ed-mode");
      this.keyInput = art.querySelector("#ed-key");
      this.ttlInput = art.querySelector("#ed-ttl");
      this.saving = null;      // revision of a save in flight / just done (its own change event is not "someone else")
      this.conflict = null;    // the 409 body while the three-way view is shown
      this.checkTimer = null;
      this.initialText = this.baseText(this.mode);
      art.setAttribute("data-ready", "loading");
      this.textarea.value = this.initialText;
      this.textarea.readOnly = false;
      loadEditorLibs(art).then(() => this.mount(), (err) => this.mount(err));
    }
    // The stored value as the editor shows it in `mode` (hex for bytes that are not UTF-8).
    baseText(mode) {
      if (mode === "hex") return toHex(this.base.bytes);
      const text = decodeUtf8(this.base.bytes);
      if (text == null) { this.mode = "hex"; if (this.select) this.select.value = "hex"; return toHex(this.base.bytes); }
      return text;
    }
    mount(err) {
      if (!this.art.isConnected) return;
      if (err || !window.CodeMirror) {
        // Without CodeMirror a textarea still edits; it turns \r\n into \n, so such values use hex.
        this.error(`The code editor could not load (${err ? err.message : "unknown error"}); using a plain text box.`);
        if (this.mode !== "hex" && this.initialText.includes("\r")) this.setMode("hex");
      } else {
        this.cm = window.CodeMirror.fromTextArea(this.textarea, {
          value: this.initialText,
          mode: CM_MODES[this.mode],
          lineNumbers: true,
          lineWrapping: true,
          // Text whose every line ends in \r\n keeps doing so, lines typed included; otherwise a
          // \r stays a \r (shown as a marker): bytes are sacred.
          lineSeparator: /\r\n/.test(this.initialText) && !/(^|[^\r])\n/.test(this.initialText) ? "\r\n" : "\n",
          indentUnit: 2,
          tabSize: 2,
          viewportMargin: 50,
          extraKeys: {
            "Ctrl-S": () => this.primary(),
            "Cmd-S": () => this.primary(),
            Esc: () => this.escape(),
            Tab: (cm) => (cm.somethingSelected() ? cm.indentSelection("add") : cm.replaceSelection("  ", "end")),
            "Shift-Tab": (cm) => cm.indentSelection("subtract"),
          },
        });
        this.cm.setValue(this.initialText);
        this.cm.clearHistory();
        this.cm.on("changes", () => this.changed());
        const label = this.art.querySelector("h1");
        this.cm.getInputField().setAttribute("aria-label", `value of ${label ? label.textContent : "the key"}`);
      }
      this.art.setAttribute("data-ready", "true");
      this.changed();
      this.check();
      if (this.isNew && this.keyInput && !this.keyInput.readOnly) {
        const end = this.keyInput.value.length;
        this.keyInput.focus();
        this.keyInput.setSelectionRange(end, end); // type the name after the prefilled directory
      } else this.focus();
    }
    focus() { if (this.cm) this.cm.focus(); else this.textarea.focus(); }
    text() { return this.cm ? this.cm.getValue() : this.textarea.value; }
    setText(t) { if (this.cm) { this.cm.setValue(t); } else this.textarea.value = t; this.changed(); }
    // The bytes the editor holds, or { error } for hex that does not parse.
    bytes() {
      if (this.mode === "hex") return parseHex(this.text());
      return { bytes: utf8.encode(this.text()) };
    }
    dirty() {
      const b = this.bytes();
      return !!b.error || !sameBytes(b.bytes, this.base.bytes) || (this.isNew && this.text() !== "");
    }
    setMode(mode) {
      if (mode === this.mode) return;
      const cur = this.bytes();
      if (cur.error) { this.select.value = this.mode; this.check(); return; }
      if (mode === "hex") {
        this.mode = mode;
        this.setText(toHex(cur.bytes));
      } else if (this.mode === "hex") {
        const text = decodeUtf8(cur.bytes);
        if (text == null) {
          this.select.value = "hex";
          clearTimeout(this.checkTimer);
          this.status("warn", "⚠ these bytes are not UTF-8 text; they can only be edited as hex");
          return;
        }
        this.mode = mode;
        this.setText(text);
      } else this.mode = mode;
      if (this.select) this.select.value = this.mode;
      if (this.cm) this.cm.setOption("mode", CM_MODES[this.mode]);
      this.check();
    }
    // What the server counts against its limit (etcd's request size): the value, the key three
    // times (compare, put, read-back) and the framing the page is told about.
    requestSize(valueLen) {
      const k = this.keyForSave();
      const keyLen = k.key_b64 != null ? b64ToBytes(k.key_b64).length : utf8.encode(k.key).length;
      return valueLen + 3 * keyLen + this.overhead;
    }
    tooLarge(valueLen) { return this.maxBytes > 0 && this.requestSize(valueLen) > this.maxBytes; }
    changed() {
      if (!this.art.isConnected) return;
      const size = this.art.querySelector(".ed-size");
      const b = this.bytes();
      if (size && b.bytes) {
        size.textContent = humanSize(b.bytes.length);
        size.classList.toggle("bad", this.tooLarge(b.bytes.length));
      }
      clearTimeout(this.checkTimer);
      this.checkTimer = setTimeout(() => this.check(), 250);
    }
    status(kind, text) {
      const s = this.art.querySelector(".ed-check");
      if (!s) return;
      s.className = `ed-check ${kind}`;
      s.textContent = text;
    }
    // Validation warns, it does not block (a value need not be valid JSON to be stored) — except
    // hex, which must parse to be bytes at all.
    validate() {
      const text = this.text();
      if (this.mode === "hex") {
        const b = parseHex(text);
        return b.error ? { kind: "bad", text: b.error, blocks: true } : { kind: "ok", text: `${b.bytes.length} bytes` };
      }
      if (this.mode === "json") {
        try { JSON.parse(text); return { kind: "ok", text: "valid JSON" }; } catch (e) { return { kind: "warn", text: `not valid JSON: ${e.message}` }; }
      }
      if (this.mode === "yaml") {
        if (!window.jsyaml) return { kind: "dim", text: "YAML not checked (validator not loaded)" };
        try { window.jsyaml.loadAll(text, () => {}); return { kind: "ok", text: "valid YAML" }; } catch (e) {
          const where = e.mark ? ` (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : "";
          return { kind: "warn", text: `not valid YAML: ${e.reason || e.message}${where}` };
        }
      }
      if (this.mode === "toml") return { kind: "dim", text: "TOML is highlighted, not checked" };
      return { kind: "dim", text: "" };
    }
    check() {
      const v = this.validate();
      const b = this.bytes();
      if (b.bytes && this.tooLarge(b.bytes.length)) {
        this.status("bad", `too large: saving would be a ${humanSize(this.requestSize(b.bytes.length))} request; this server accepts ${humanSize(this.maxBytes)}`);
        return v;
      }
      this.status(v.kind, v.kind === "warn" ? `⚠ ${v.text}` : v.text);
      return v;
    }
    error(text, detail) {
      const slot = this.art.querySelector(".ed-error");
      if (!slot) return;
      slot.replaceChildren();
      if (!text) return;
      const b = banner("error", detail || "Not saved.", text);
      slot.append(b);
      slot.scrollIntoView({ block: "nearest" });
    }
    show(stage) {
      this.stage = stage;
      qsAll(this.art, ".ed-stage").forEach((s) => { s.hidden = !s.classList.contains(`ed-${stage}`); });
      if (stage === "edit" && this.cm) this.cm.refresh();
    }
    keyForSave() {
      // An existing key (also one deleted meanwhile and being created again) keeps its bytes.
      if (this.keyB64 && (!this.isNew || !this.keyInput || this.keyInput.readOnly)) return { key_b64: this.keyB64 };
      // What was typed is read like the search box reads it (and like labels show keys): `\\`
      // is a backslash and `\xNN` a byte, so a label pasted here names the same key.
      const typed = parseDisplay(this.keyInput ? this.keyInput.value : "");
      const prefix = this.keyInput && this.keyInput.getAttribute("data-prefix-b64");
      // A directory whose name is not UTF-8: its bytes, then what was typed.
      const head = prefix ? b64ToBytes(prefix) : new Uint8Array();
      const key = new Uint8Array(head.length + typed.length);
      key.set(head);
      key.set(typed, head.length);
      return { key_b64: bytesToB64(key) };
    }
    keyB64Now() {
      const k = this.keyForSave();
      return k.key_b64 != null ? k.key_b64 : bytesToB64(utf8.encode(k.key));
    }
    // Ctrl+S: review from the editor, save from the review.
    primary() {
      if (doc.querySelector("dialog[open]")) return;
      if (this.stage === "edit") this.review();
      else if (this.stage === "review") this.save();
    }
    escape() {
      if (doc.querySelector("dialog[open]")) return;
      if (this.stage === "review") { this.show("edit"); this.focus(); }
      else if (this.stage === "conflict") this.keepEditing();
      else if (this.stage === "edit") this.cancel();
    }
    review() {
      this.error("");
      if (this.isNew && this.keyInput && this.keyInput.value === "") {
        this.error("Give the key a name.", "Missing key.");
        this.keyInput.focus();
        return;
      }
      if (this.ttlInput && this.ttlInput.value !== "" && !(Number(this.ttlInput.value) >= 1 && Number.isInteger(Number(this.ttlInput.value)))) {
        this.error("TTL must be a whole number of seconds, 1 or more (or empty for no lease).", "Bad TTL.");
        this.ttlInput.focus();
        return;
      }
      const v = this.check();
      const cur = this.bytes();
      if (cur.error) { this.error(cur.error, "Not valid hex."); this.focus(); return; }
      const pane = this.art.querySelector(".ed-review");
      pane.replaceChildren();
      const same = !this.isNew && sameBytes(cur.bytes, this.base.bytes);
      const hexView = this.mode === "hex" || decodeUtf8(this.base.bytes) == null;
      const oldText = hexView ? toHex(this.base.bytes) : decodeUtf8(this.base.bytes);
      const newText = hexView ? toHex(cur.bytes) : this.text();
      const lines = lineDiff(this.isNew ? "" : oldText, newText);
      const n = countChanges(lines);
      const head = el("div", "review-head");
      head.append(el("h2", null, this.isNew ? "Review the new key" : "Review your changes"));
      head.append(el("span", "dim", same ? "no changes" : `${n.added} line${n.added === 1 ? "" : "s"} added, ${n.removed} removed · ${humanSize(cur.bytes.length)}${hexView ? " · bytes shown as hex" : ""}`));
      pane.append(head);
      if (this.isNew) {
        const facts = el("dl", "meta");
        facts.append(el("dt", null, "key"), el("dd", null, this.keyInput ? this.keyInput.value : ""));
        facts.append(el("dt", null, "lease"), el("dd", null, this.ttlInput && this.ttlInput.value ? `new, TTL ${this.ttlInput.value} s` : "none"));
        pane.append(facts);
      }
      if (v.kind === "warn") {
        const w = banner("warn", "Warning.", `${v.text}. You can still save it.`);
        pane.append(w);
      }
      pane.append(same ? el("p", "dim", "The value is exactly what is stored. Nothing to save.") : diffView(lines));
      const actions = el("div", "ed-actions");
      const save = button(this.isNew ? "create" : "save", "primary ed-save");
      save.append(" ", el("kbd", null, "Ctrl"), el("kbd", null, "S"));
      save.disabled = same;
      save.addEventListener("click", () => this.save());
      const back = button("back to editing");
      back.append(" ", el("kbd", null, "Esc"));
      back.addEventListener("click", () => { this.show("edit"); this.focus(); });
      actions.append(save, back);
      pane.append(actions);
      this.show("review");
      (same ? back : save).focus();
    }
    async save(expected) {
      if (this.stage === "saving") return;
      const cur = this.bytes();
      if (cur.error) { this.show("edit"); this.error(cur.error, "Not valid hex."); return; }
      if (!this.isNew && expected === undefined && sameBytes(cur.bytes, this.base.bytes)) return;
      const body = Object.assign(this.keyForSave(), {
        value_b64: bytesToB64(cur.bytes),
        expected_mod_revision: expected === undefined ? this.base.rev : expected,
      });
      if (this.ttlInput && this.ttlInput.value !== "") body.ttl = Number(this.ttlInput.value);
      const previous = this.stage;
      this.stage = "saving";
      this.art.setAttribute("aria-busy", "true");
      const res = await call("PUT", this.art.getAttribute("data-put-url"), body);
      this.art.removeAttribute("aria-busy");
      this.stage = previous;
      if (res.status === 200 && res.body) {
        this.saving = res.body.revision;
        this.done();
      } else if (res.status === 409 && res.body) {
        this.showConflict(res.body, cur.bytes);
      } else if (res.status === 413) {
        this.show("edit");
        this.error(why(res), "Too large.");
      } else if (res.status === 0) {
        this.error(`${res.error}. The value may or may not have been saved: reload the key to check before saving again.`, "No answer.");
      } else {
        this.error(why(res));
      }
    }
    // Saved: leave the editor and show the key as stored now.
    done() {
      this.clean = true;
      let viewUrl = this.art.getAttribute("data-view-url");
      let permalink = this.art.getAttribute("data-permalink");
      const created = this.isNew && !viewUrl;
      if (created) {
        viewUrl = this.newViewUrl();
        permalink = withKey(this.art.getAttribute("data-permalink-base"), this.keyForSave());
      }
      this.leave(viewUrl, permalink, created);
    }
    leave(viewUrl, permalink, newUrl) {
      this.destroy();
      const pane = doc.getElementById("keyview");
      const inBrowser = pane && pane.closest("main.browser") && window.htmx;
      // Focus goes back to the key's heading, not to the page body.
      const refocus = () => {
        const h = doc.querySelector("#keyview h1.key-path");
        if (h) h.focus({ preventScroll: true });
      };
      if (inBrowser && viewUrl) {
        Promise.resolve(window.htmx.ajax("GET", viewUrl, { target: "#keyview" })).then(refocus, () => {});
        if (newUrl && permalink) history.replaceState(history.state, "", permalink);
      } else if (inBrowser) {
        pane.replaceChildren(...(stash || [el("p", "placeholder", "Select a key.")]));
        window.htmx.process(pane);
        refocus();
      } else {
        const main = doc.querySelector("main[data-back-href]");
        location.assign(permalink || (main && main.getAttribute("data-back-href")) || location.href);
      }
      stash = null;
    }
    async cancel() {
      if (this.dirty() && !this.clean) {
        const ok = await modal({
          title: "Discard your changes?",
          build: (ctx) => ctx.body.append(el("p", null, "What you typed in the editor is not saved and will be lost.")),
          confirm: "discard",
          cancel: "keep editing",
          danger: true,
        });
        if (!ok) { this.focus(); return; }
      }
      this.clean = true;
      this.leave(this.art.getAttribute("data-view-url"), this.art.getAttribute("data-permalink"), false);
    }
    destroy() {
      clearTimeout(this.checkTimer);
      if (this.cm) this.cm.toTextArea();
      if (active === this) active = null;
    }
    // Someone else changed the key: say so right away.
    remoteChange(d) {
      if (d.key_b64 !== this.keyB64Now()) return;
      if (d.revision <= this.base.rev || d.revision === this.saving) return;
      if (this.stage === "saving") return; // a 409 will show it; a 200 closes the editor
      this.changedBy = d.revision;
      const slot = this.art.querySelector(".ed-live");
      const what = d.type === "delete" ? `deleted it at revision ${d.revision}` : `saved revision ${d.revision}`;
      slot.replaceChildren(banner("warn", "Changed by someone else since you opened it.", `Someone ${what}. Your text is kept; saving will show both versions.`));
    }
    remoteResync() {
      const slot = this.art.querySelector(".ed-live");
      const b = banner("warn", "Live updates were interrupted.", "The key may have changed meanwhile; saving still checks.");
      slot.replaceChildren(b);
    }
    /* --- three-way view --- */
    showConflict(body, mine) {
      this.conflict = body;
      const current = body.current || null;
      const theirs = current ? b64ToBytes(current.value_b64) : null;
      const asHex = [this.base.bytes, theirs || new Uint8Array(), mine].some((b) => decodeUtf8(b) == null) || this.mode === "hex";
      const show = (bytes) => (bytes == null ? "" : asHex ? toHex(bytes) : decodeUtf8(bytes));
      const baseText = show(this.base.bytes);
      const pane = this.art.querySelector(".ed-conflict");
      pane.replaceChildren();
      let text = "Nothing was written.";
      if (this.isNew && current) text = `A key with this name exists now (revision ${current.mod_revision}); creating never overwrites. Nothing was written.`;
      else if (current) text = `Someone else changed this key since you opened it at revision ${this.base.rev}; it is now at revision ${current.mod_revision}. Nothing was written.`;
      else if (this.base.rev > 0) text = `Someone else deleted this key since you opened it at revision ${this.base.rev}. Nothing was written.`;
      pane.append(banner("error", "Not saved.", text));
      this.art.querySelector(".ed-live").replaceChildren(); // the conflict says it all
      const grid = el("div", "threeway");
      const column = (title, sub, text, against, cls) => {
        const fig = el("figure", `way ${cls}`);
        const cap = el("figcaption");
        cap.append(el("strong", null, title), el("span", "dim", sub));
        const pre = el("pre", "value way-text");
        if (text == null) pre.append(el("span", "faint", "(no key)"));
        else if (against == null) pre.append(text);
        else {
          // Lines this side added compared with what you started from are marked.
          for (const l of lineDiff(against, text)) {
            if (l.t === "-") continue;
            pre.append(l.t === "+" ? el("mark", "chg", l.s) : l.s, "\n");
          }
        }
        fig.append(cap, pre);
        return fig;
      };
      grid.append(
        column("you started from", this.base.rev > 0 ? ` revision ${this.base.rev}` : " (no key)", this.base.rev > 0 || !this.isNew ? baseText : null, null, "base"),
        column("now in etcd", current ? ` revision ${current.mod_revision}` : " deleted", current ? show(theirs) : null, baseText, "theirs"),
        column("yours", " not saved", show(mine), baseText, "mine"),
      );
      pane.append(grid);
      const actions = el("div", "ed-actions");
      const over = button("overwrite with mine…", "danger");
      over.setAttribute("data-overwrite", "");
      over.addEventListener("click", () => this.overwrite());
      const take = button("take theirs");
      take.setAttribute("data-take-theirs", "");
      take.addEventListener("click", () => { this.clean = true; this.leave(this.art.getAttribute("data-view-url") || this.newViewUrl(), this.art.getAttribute("data-permalink"), false); });
      const keep = button("keep editing");
      keep.setAttribute("data-keep-editing", "");
      keep.append(" ", el("kbd", null, "Esc"));
      keep.addEventListener("click", () => this.keepEditing());
      actions.append(keep, take, over);
      pane.append(actions);
      this.show("conflict");
      keep.focus();
    }
    newViewUrl() {
      return withKey(this.art.getAttribute("data-view-base"), this.keyForSave());
    }
    // "yours" is what the editor holds (the conflict view does not change it).
    async overwrite() {
      const current = this.conflict && this.conflict.current;
      const rev = current ? current.mod_revision : 0;
      const ok = await modal({
        title: "Overwrite their change?",
        build: (ctx) => ctx.body.append(el("p", null, current
          ? `Revision ${rev} (what someone else saved) will be replaced by your text. Their version stays in the key's history until compaction.`
          : "The key was deleted; saving creates it again with your text.")),
        confirm: "overwrite",
        danger: true,
      });
      if (!ok) return;
      this.show("edit");
      await this.save(rev);
      if (this.stage === "edit" && this.art.isConnected && !this.clean) this.show(this.conflict ? "conflict" : "edit");
    }
    // Continue from what is there now: the review compares with their version from here on.
    keepEditing() {
      const current = this.conflict && this.conflict.current;
      if (this.conflict) {
        this.base = { bytes: current ? b64ToBytes(current.value_b64) : new Uint8Array(), rev: current ? current.mod_revision : 0 };
        if (!current) this.isNew = true;
        this.changedBy = null;
        const slot = this.art.querySelector(".ed-live");
        const b = banner("info", "Editing against their version.", current
          ? `Your text is kept. Saving now replaces revision ${current.mod_revision} only if nobody changes it again; the review compares with it.`
          : "Your text is kept. The key was deleted; saving creates it again.");
        slot.replaceChildren(b);
        const rev = this.art.querySelector("dl.meta dd");
        if (rev && current) rev.textContent = String(current.mod_revision);
      }
      this.conflict = null;
      this.show("edit");
      this.focus();
    }
    /* --- file upload --- */
    upload(file) {
      if (!file) return;
      const reader = new FileReader();
      reader.onerror = () => this.error(`could not read ${file.name}`, "Upload failed.");
      reader.onload = () => {
        const bytes = new Uint8Array(reader.result);
        if (this.tooLarge(bytes.length)) {
          this.error(`${file.name} is ${humanSize(bytes.length)}; with the key that is a ${humanSize(this.requestSize(bytes.length))} request and this server accepts at most ${humanSize(this.maxBytes)}.`, "Too large.");
          return;
        }
        const text = decodeUtf8(bytes);
        if (text != null && !text.includes("\r") && this.mode !== "hex") this.setText(text);
        else {
          this.mode = "hex";
          if (this.select) this.select.value = "hex";
          if (this.cm) this.cm.setOption("mode", null);
          this.setText(toHex(bytes));
        }
        this.status("ok", `${file.name}: ${humanSize(bytes.length)} loaded; review to save`);
      };
      reader.readAsArrayBuffer(file);
    }
  }

  // The key view before an editor replaced it (restored when a new-key editor is cancelled).
  let stash = null;
  function initEditors() {
    for (const art of qsAll(doc, "article.editor:not([data-ready])")) {
      if (active && active.art.isConnected) active.destroy();
      active = new Editor(art);
    }
  }

  /* ---------- delete a key ----------------------------------------------- */
  async function deleteKey(btn) {
    const url = btn.getAttribute("data-delete-key");
    const label = btn.getAttribute("data-key-label") || "";
    let expected = Number(btn.getAttribute("data-mod-revision") || 0);
    const art = btn.closest("article.key");
    const ok = await modal({
      title: "Delete this key?",
      danger: true,
      confirm: "delete",
      build(ctx) {
        const p = el("p");
        p.append(el("code", "key-name", label));
        ctx.body.append(p, el("p", "dim", `Deletes revision ${expected} only if nobody changed it since. The value stays in the key's history until compaction.`));
      },
      async onConfirm(ctx) {
        const res = await call("DELETE", withParam(url, "expected_mod_revision", expected));
        if (res.status === 200) return true;
        if (res.status === 409 && res.body) {
          const cur = res.body.current;
          const extra = el("div", "modal-current");
          if (cur) {
            extra.append(el("p", null, `Now at revision ${cur.mod_revision} (version ${cur.version}):`));
            const pre = el("pre", "value");
            const bytes = b64ToBytes(cur.value_b64);
            const text = decodeUtf8(bytes);
            pre.textContent = text == null ? toHex(bytes.subarray(0, 256)) : text.slice(0, 2000);
            extra.append(pre);
            expected = cur.mod_revision;
            ctx.confirmButton.textContent = `delete revision ${cur.mod_revision}`;
          } else {
            extra.append(el("p", null, "The key does not exist any more."));
            ctx.confirmButton.hidden = true;
          }
          ctx.error(why(res), extra);
          return false;
        }
        ctx.error(why(res));
        return false;
      },
    });
    if (ok && art && window.htmx) window.htmx.ajax("GET", art.getAttribute("data-view-url"), { target: "#keyview" });
  }

  /* ---------- delete a prefix -------------------------------------------- */
  async function deletePrefix(previewUrl, postUrl, done) {
    let preview = null;
    let typed = "";
    const expect = () => (preview ? (preview.prefix != null ? preview.prefix : displayBytes(b64ToBytes(preview.prefix_b64))) : null);
    const render = async (ctx) => {
      ctx.body.replaceChildren(el("p", "dim", "Counting…"));
      const res = await call("GET", previewUrl);
      if (res.status !== 200 || !res.body) { ctx.body.replaceChildren(); ctx.error(`could not count the keys: ${why(res)}`); return; }
      preview = res.body;
      const want = expect();
      ctx.body.replaceChildren();
      const p = el("p", "prefix-line");
      p.append("Every key under ", el("code", "key-name", want === "" ? "(empty prefix: the whole key space)" : want), " will be deleted:");
      const count = el("p", "prefix-count");
      count.append(el("strong", null, `${preview.count} key${preview.count === 1 ? "" : "s"}`), el("span", "dim", ` at revision ${preview.revision}${preview.stale ? " (no quorum: may be stale)" : ""}`));
      ctx.body.append(p, count);
      if (preview.sample && preview.sample.length) {
        const ul = el("ul", "sample");
        for (const k of preview.sample) ul.append(el("li", "mono", k.key != null ? k.key : displayBytes(b64ToBytes(k.key_b64))));
        if (preview.count > preview.sample.length) ul.append(el("li", "dim", `… and ${preview.count - preview.sample.length} more`));
        ctx.body.append(ul);
      }
      if (!preview.allowed) {
        ctx.error("Deleting the empty prefix (every key) is disabled on this server (--allow-delete-all).");
        ctx.enable(false);
        return;
      }
      if (preview.count === 0) { ctx.body.append(el("p", "dim", "Nothing to delete.")); ctx.enable(false); return; }
      const label = el("label", "type-to-confirm");
      label.append(el("span", null, "Type the prefix to confirm"));
      const input = el("input");
      input.type = "text";
      input.spellcheck = false;
      input.autocomplete = "off";
      input.setAttribute("data-confirm-prefix", "");
      input.value = typed;
      input.addEventListener("input", () => { typed = input.value; ctx.enable(typed === want); });
      label.append(input);
      ctx.body.append(label);
      ctx.enable(typed === want);
      input.focus();
    };
    const ok = await modal({
      title: "Delete a prefix?",
      danger: true,
      confirm: "delete all",
      isReady: () => !!preview && preview.allowed && preview.count > 0 && typed === expect(),
      build(ctx) { ctx.enable(false); render(ctx); },
      async onConfirm(ctx) {
        // The preview's revision too: a key changed after it (same count) also refuses.
        const res = await deleting(ctx, preview.count, "POST", postUrl, { prefix_b64: preview.prefix_b64, expected_count: preview.count, revision: preview.revision });
        if (res.status === 200) { ctx.result = res.body; deletedNote(res.body, expect()); return true; }
        const again = button("count again", "small");
        again.addEventListener("click", () => { ctx.error(""); render(ctx); });
        ctx.error(why(res), res.status === 409 ? again : null);
        return false;
      },
    });
    if (ok && done) done();
  }
  function deletedNote(body, prefix) {
    const slot = doc.querySelector(".tree-note");
    if (!slot) return;
    const b = banner("info", "Deleted.", `${body.deleted} key${body.deleted === 1 ? "" : "s"} under ${prefix} at revision ${body.revision}.`);
    slot.replaceChildren(b);
  }
  // The prefix preview of a directory row, from its own children URL (exact bytes, as rendered).
  function dirPreviewUrl(li) {
    const tree = li.closest("ul.tree[data-delete-prefix-post]");
    const url = li.getAttribute("data-children-url") || "";
    const m = /[?&]prefix=([^&#]*)/.exec(url);
    if (!tree || !m) return null;
    return { preview: `${tree.getAttribute("data-delete-prefix-post")}?prefix=${m[1]}`, post: tree.getAttribute("data-delete-prefix-post") };
  }

  /* ---------- history: restore ------------------------------------------- */
  async function restore(btn) {
    const page = btn.closest("[data-history]");
    const rev = Number(btn.getAttribute("data-restore"));
    const current = Number(page.getAttribute("data-current-revision") || 0);
    await modal({
      title: `Restore revision ${rev}?`,
      confirm: "restore",
      build: (ctx) => ctx.body.append(el("p", null, current
        ? `Its value is saved as a new version, only if the key is still at revision ${current}. The lease stays as it is now.`
        : "The key does not exist now; restoring creates it with this value.")),
      async onConfirm(ctx) {
        const old = await call("GET", `${page.getAttribute("data-history-api")}&before=${rev}&limit=1`);
        const v = old.body && old.body.versions && old.body.versions[0];
        if (old.status !== 200 || !v || v.mod_revision !== rev) {
          ctx.error(old.status === 200 ? `revision ${rev} is not retained any more (compacted)` : why(old));
          return false;
        }
        const res = await call("PUT", page.getAttribute("data-put-url"), { key_b64: page.getAttribute("data-key-b64"), value_b64: v.value_b64, expected_mod_revision: current });
        if (res.status === 200) {
          location.assign(withParam(page.getAttribute("data-self-href"), "restored", String(rev)));
          return true;
        }
        if (res.status === 409) {
          const now = res.body && res.body.current;
          ctx.error(`${why(res)}. ${now ? `Reload to see revision ${now.mod_revision} before restoring.` : ""}`.trim());
          return false;
        }
        ctx.error(why(res));
        return false;
      },
    });
  }

  /* ---------- leases: revoke --------------------------------------------- */
  async function revoke(btn) {
    const row = btn.closest("tr");
    const hex = btn.getAttribute("data-lease-hex");
    let attached = 0;
    // The keys attached right now (the page may be minutes old), as the API lists them.
    const list = async (ctx) => {
      ctx.body.replaceChildren(el("p", "dim", "Looking up the attached keys…"));
      const res = await call("GET", `${btn.getAttribute("data-revoke")}?keys=50`);
      ctx.body.replaceChildren();
      if (res.status === 404) {
        ctx.body.append(el("p", null, "This lease does not exist any more (it expired or was revoked)."));
        ctx.confirmButton.hidden = true;
        return;
      }
      const lease = res.status === 200 && res.body ? res.body : null;
      if (lease && lease.key_count == null) {
        ctx.body.append(el("p", null, `Too many keys are attached to this lease for etcdboard to list (etcd's list of them is over 4 MiB), so it cannot show or check which keys revoking it would delete. If they may all go, revoke it with etcdctl lease revoke ${hex}.`));
        ctx.confirmButton.hidden = true;
        return;
      }
      const keys = lease ? lease.keys : null;
      if (!keys) ctx.error(`the keys attached right now could not be listed (${why(res)}); these are the ones the page showed.`, null, "Not checked.");
      const n = lease ? lease.key_count : Number(btn.getAttribute("data-key-count") || 0);
      attached = n;
      ctx.confirmButton.textContent = n ? `revoke and delete ${n} key${n === 1 ? "" : "s"}` : "revoke";
      ctx.body.append(el("p", null, n ? `${keys ? "These" : "About these"} ${n} key${n === 1 ? "" : "s"} will vanish with it:` : "No key is attached to it; revoking deletes nothing."));
      if (n) {
        const ul = el("ul", "sample");
        if (keys) {
          for (const k of keys) ul.append(el("li", "mono", k.key != null ? k.key : displayBytes(b64ToBytes(k.key_b64))));
          if (n > keys.length) ul.append(el("li", "dim", `… and ${n - keys.length} more`));
        } else {
          for (const li of qsAll(row, ".lease-keys li")) ul.append(el("li", li.classList.contains("dim") ? "dim" : "mono", li.textContent));
        }
        ctx.body.append(ul);
      }
      ctx.enable(true);
    };
    await modal({
      title: `Revoke lease ${hex}?`,
      danger: true,
      confirm: "revoke",
      build(ctx) { ctx.enable(false); list(ctx); },
      async onConfirm(ctx) {
        const res = await deleting(ctx, attached, "DELETE", btn.getAttribute("data-revoke"));
        if (res.status === 200 && res.body) {
          const note = doc.querySelector(".leases-note");
          if (note) {
            const b = banner("info", "Revoked.", `Lease ${hex}: ${res.body.deleted_keys} key${res.body.deleted_keys === 1 ? "" : "s"} deleted at revision ${res.body.revision}.`);
            note.replaceChildren(b);
          }
          row.remove();
          return true;
        }
        ctx.error(why(res));
        return false;
      },
    });
  }
  function leasesAge() {
    const age = doc.querySelector("[data-leases] [data-age]");
    if (!age) return;
    const t0 = Date.now();
    setInterval(() => {
      const s = Math.round((Date.now() - t0) / 1000);
      age.textContent = s < 60 ? `read ${s} s ago` : `read ${Math.floor(s / 60)} min ago`;
      age.classList.toggle("stale", s >= 30);
    }, 1000);
  }

  /* ---------- export / import -------------------------------------------- */
  function initTransfer() {
    const page = doc.querySelector("[data-transfer]");
    if (!page) return;
    let total = null;
    const countP = page.querySelector("[data-count]");
    call("GET", page.getAttribute("data-count-url")).then((res) => {
      if (res.status === 200 && res.body) {
        total = res.body.count;
        countP.textContent = `${total} key${total === 1 ? "" : "s"} at revision ${res.body.revision}${res.body.stale ? " (no quorum: may be stale)" : ""}.`;
      } else countP.textContent = `Could not count the keys: ${why(res)}.`;
    });
    let running = null;
    let lastBlobUrl = null;
    const cancelBtn = page.querySelector("[data-export-cancel]");
    const progressRow = page.querySelector("[data-export-progress]");
    const progress = progressRow.querySelector("progress");
    const status = page.querySelector("[data-export-status]");
    const result = page.querySelector("[data-export-result]");
    cancelBtn.addEventListener("click", () => { if (running) running.abort(); });
    page.addEventListener("click", async (e) => {
      const link = e.target instanceof Element ? e.target.closest("a[data-export]") : null;
      if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0 || !window.ReadableStream) return;
      e.preventDefault();
      if (running) return;
      const format = link.getAttribute("data-export");
      const ctl = new AbortController();
      running = ctl;
      result.replaceChildren();
      cancelBtn.hidden = false;
      progressRow.hidden = false;
      qsAll(page, "a[data-export]").forEach((a) => a.setAttribute("aria-disabled", "true"));
      if (total) { progress.max = total; progress.value = 0; } else progress.removeAttribute("value");
      const chunks = [];
      let bytes = 0, keys = 0, carry = "";
      // Each entry names its key_b64 once; values are escaped (JSON) or indented deeper (YAML),
      // so these markers count entries. Fixed length: a carry of length-1 never holds a whole one.
      const needle = format === "json" ? /"key_b64":/g : /\n(?: {4}| {2}- )key_b64: /g;
      const NEEDLE_LEN = format === "json" ? 10 : 14;
      const decoder = new TextDecoder();
      let stalled = null;
      const arm = () => { clearTimeout(stalled); stalled = setTimeout(() => ctl.abort("stalled"), TIMEOUT_MS * 2); };
      let filename = `export.${format}`;
      let fail = null;
      try {
        arm();
        const res = await fetch(link.href, { credentials: "same-origin", signal: ctl.signal });
        if (!res.ok) {
          let msg = `${res.status} ${res.statusText}`;
          try { msg = (await res.json()).error || msg; } catch (_) { /* not JSON */ }
          throw new Error(msg);
        }
        const cd = res.headers.get("Content-Disposition") || "";
        const m = /filename="([^"]+)"/.exec(cd);
        if (m) filename = m[1];
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          arm();
          chunks.push(value);
          bytes += value.length;
          const text = carry + decoder.decode(value, { stream: true });
          keys += (text.match(needle) || []).length;
          carry = text.slice(-(NEEDLE_LEN - 1));
          status.textContent = `${keys}${total != null ? ` of ${total}` : ""} keys · ${humanSize(bytes)}`;
          if (total) progress.value = Math.min(keys, total);
        }
        const blob = new Blob(chunks, { type: format === "json" ? "application/json" : "application/yaml" });
        const tail = await blob.slice(Math.max(0, blob.size - 4096)).text();
        if (format === "json" ? /\],"error":/.test(tail) : /^error: /m.test(tail)) {
          fail = "the server stopped part way (the file says why); it was not saved";
        } else {
          const url = URL.createObjectURL(blob);
          const a = el("a", "btn primary export-file", `save ${filename}`);
          a.href = url;
          a.download = filename;
          const b = banner("info", "Exported.", `${keys} key${keys === 1 ? "" : "s"}, ${humanSize(blob.size)}, read at one revision.`, a);
          result.replaceChildren(b);
          status.textContent = `${keys}${total != null ? ` of ${total}` : ""} keys · ${humanSize(bytes)} · done`;
          if (total) progress.value = total;
          if (lastBlobUrl) URL.revokeObjectURL(lastBlobUrl);
          lastBlobUrl = url;
          a.focus(); // Enter saves it
        }
      } catch (err) {
        fail = ctl.signal.aborted ? (ctl.signal.reason === "stalled" ? `no data for ${TIMEOUT_MS * 2 / 1000} s` : "cancelled") : err.message;
      } finally {
        clearTimeout(stalled);
        running = null;
        cancelBtn.hidden = true;
        qsAll(page, "a[data-export]").forEach((a) => a.removeAttribute("aria-disabled"));
      }
      if (fail) {
        result.replaceChildren(fail === "cancelled"
          ? banner("info", "Cancelled.", "Nothing was saved.")
          : banner("error", "Export failed.", fail));
        progressRow.hidden = true;
      }
    });

    const file = page.querySelector("[data-import-file]");
    const dry = page.querySelector("[data-import-dry]");
    const out = page.querySelector("[data-import-result]");
    file.addEventListener("change", () => { dry.disabled = !file.files.length; out.replaceChildren(); });
    const contentType = (f) => (/\.ya?ml$/i.test(f.name) ? "application/yaml" : "application/json");
    const report = (body, applied) => {
      const t = el("table", "data import-report");
      const tb = el("tbody");
      for (const [name, label, n] of [["created", applied ? "created" : "would create", body.created], ["updated", applied ? "updated" : "would update", body.updated], ["unchanged", "unchanged", body.unchanged], ["conflicts", "conflicts (left alone)", body.conflicts]]) {
        const tr = el("tr");
        tr.setAttribute("data-n", name);
        tr.append(el("th", null, label), el("td", "num mono", String(n)));
        tb.append(tr);
      }
      t.append(tb);
      const box = el("div", "import-box");
      box.append(t);
      if (body.conflict_keys && body.conflict_keys.length) {
        box.append(el("p", "dim", "Conflicting keys (changed in this cluster after the export was taken):"));
        const ul = el("ul", "sample");
        for (const k of body.conflict_keys.slice(0, 20)) ul.append(el("li", "mono", `${k.key != null ? k.key : displayBytes(b64ToBytes(k.key_b64))} — ${k.reason}`));
        if (body.conflict_keys.length > 20) ul.append(el("li", "dim", `… and ${body.conflicts - 20} more`));
        box.append(ul);
      }
      return box;
    };
    async function run(dryRun, overwrite) {
      const f = file.files[0];
      if (!f) return;
      let url = withParam(page.getAttribute("data-import-url"), "dry_run", dryRun ? "true" : "false");
      if (overwrite) url = withParam(url, "overwrite", "true");
      dry.disabled = true;
      // A large import takes a while: show that it is still going, give up after IMPORT_MS.
      const note = el("p", "dim", dryRun ? "Checking…" : "Importing…");
      out.replaceChildren(note);
      const t0 = Date.now();
      const tick = setInterval(() => { note.textContent = `${dryRun ? "Checking" : "Importing"}… ${Math.round((Date.now() - t0) / 1000)} s`; }, 1000);
      const res = await call("POST", url, f, contentType(f), IMPORT_MS);
      clearInterval(tick);
      dry.disabled = false;
      out.replaceChildren();
      if (res.status !== 200 || !res.body) {
        const b = banner("error", dryRun ? "Dry run failed." : "Import failed.", res.status === 0 ? `${res.error}; the import may or may not have been applied — run a dry run again to see.` : why(res));
        out.append(b);
        return;
      }
      const body = res.body;
      const head = dryRun
        ? banner("info", "Dry run:", `nothing was written. ${f.name} would make these changes:`)
        : banner("info done", "Imported.", `${f.name}:`);
      out.append(head, report(body, !dryRun));
      if (dryRun) {
        const actions = el("div", "actions");
        const changes = body.created + body.updated;
        let ow = null;
        if (body.conflicts > 0) {
          const lbl = el("label", "overwrite");
          ow = el("input");
          ow.type = "checkbox";
          lbl.append(ow, ` also overwrite the ${body.conflicts} conflicting key${body.conflicts === 1 ? "" : "s"}`);
          actions.append(lbl);
        }
        const apply = button(changes ? `apply ${changes} change${changes === 1 ? "" : "s"}` : "apply", "primary");
        apply.setAttribute("data-import-apply", "");
        apply.disabled = changes === 0 && body.conflicts === 0;
        if (ow) ow.addEventListener("change", () => { apply.disabled = changes === 0 && !ow.checked; });
        if (changes === 0 && body.conflicts > 0) apply.disabled = true;
        apply.addEventListener("click", () => run(false, !!(ow && ow.checked)));
        actions.append(apply);
        out.append(actions);
        apply.focus();
      }
    }
    dry.addEventListener("click", () => run(true, false));
  }

  /* ---------- events ----------------------------------------------------- */
  // "new key" while a key is open: start in that key's directory.
  doc.addEventListener("click", (e) => {
    const link = e.target instanceof Element ? e.target.closest("a.new-key") : null;
    const art = doc.querySelector("#keyview article.key[data-new-url]");
    if (!link || !art || !window.htmx || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation(); // htmx would load the plain new-key editor
    window.htmx.ajax("GET", art.getAttribute("data-new-url"), { target: "#keyview" });
  }, true);
  doc.addEventListener("click", (e) => {
    const t = e.target instanceof Element ? e.target : null;
    if (!t) return;
    const del = t.closest("button[data-delete-key]");
    if (del) { e.preventDefault(); deleteKey(del); return; }
    const dp = t.closest("button[data-delete-prefix]");
    if (dp) {
      e.preventDefault();
      deletePrefix(dp.getAttribute("data-delete-prefix"), dp.getAttribute("data-delete-prefix-post"), null);
      return;
    }
    const rs = t.closest("button[data-restore]");
    if (rs) { e.preventDefault(); restore(rs); return; }
    const rv = t.closest("button[data-revoke]");
    if (rv) { e.preventDefault(); revoke(rv); return; }
    const cancel = t.closest("[data-editor-cancel]");
    if (cancel && active && active.art.contains(cancel)) {
      if (e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      active.cancel();
      return;
    }
    if (active && active.art.contains(t) && t.closest(".ed-review-btn")) { e.preventDefault(); active.review(); }
  });
  doc.addEventListener("change", (e) => {
    const t = e.target;
    if (!active || !(t instanceof Element) || !active.art.contains(t)) return;
    if (t.matches("select.ed-mode")) active.setMode(t.value);
    else if (t.matches("input.ed-file")) { active.upload(t.files[0]); t.value = ""; }
  });
  doc.addEventListener("input", (e) => {
    if (active && e.target === active.keyInput) active.changed();
  });
  doc.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    // Ctrl/Cmd+S in the editor (outside CodeMirror, which has its own keys): review, then save.
    if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === "s" || e.key === "S")) {
      if (!active || !active.art.isConnected) return;
      e.preventDefault();
      active.primary();
      return;
    }
    if (e.key === "Escape" && active && active.art.isConnected && !doc.querySelector("dialog[open]")) {
      const t = doc.activeElement;
      if (t && (t.id === "search-input")) return;
      if (active.art.contains(t) || t === doc.body || !t) { e.preventDefault(); active.escape(); }
      return;
    }
    // Delete on a directory row: delete everything under it.
    if (e.key === "Delete" && !e.ctrlKey && !e.metaKey && !e.altKey) {
      const row = doc.activeElement;
      const li = row && row.matches && row.matches("a.row.dir") ? row.parentElement : null;
      const urls = li && dirPreviewUrl(li);
      if (!urls) return;
      e.preventDefault();
      deletePrefix(urls.preview, urls.post, () => row.isConnected && row.focus());
    }
  });
  // Leaving a changed editor through the tree (htmx swaps #keyview) asks first.
  doc.addEventListener("htmx:confirm", (e) => {
    const d = e.detail || {};
    const target = d.target;
    if (!active || !active.art.isConnected || !(target instanceof Element) || !target.contains(active.art)) return;
    if (d.elt && active.art.contains(d.elt)) return;
    if (!active.dirty() || active.clean) { active.destroy(); return; }
    e.preventDefault();
    modal({
      title: "Leave the editor?",
      build: (ctx) => ctx.body.append(el("p", null, "Your changes are not saved and will be lost.")),
      confirm: "discard and leave",
      cancel: "keep editing",
      danger: true,
    }).then((ok) => {
      if (!ok) { active.focus(); return; }
      active.clean = true;
      active.destroy();
      d.issueRequest(true);
    });
  });
  doc.addEventListener("htmx:beforeSwap", (e) => {
    const d = e.detail || {};
    if (!(d.target instanceof Element) || d.target.id !== "keyview") return;
    const incoming = d.serverResponse || "";
    if (typeof incoming === "string" && incoming.includes('class="editor"') && !d.target.querySelector("article.editor")) {
      stash = Array.from(d.target.childNodes, (n) => n.cloneNode(true));
    }
  });
  doc.addEventListener("htmx:afterSettle", initEditors);
  doc.addEventListener("etcdboard:change", (e) => { if (active && active.art.isConnected) active.remoteChange(e.detail || {}); });
  doc.addEventListener("etcdboard:resync", () => { if (active && active.art.isConnected) active.remoteResync(); });
  window.addEventListener("beforeunload", (e) => {
    if (active && active.art.isConnected && !active.clean && active.dirty()) { e.preventDefault(); e.returnValue = ""; }
  });

  initEditors();
  leasesAge();
  initTransfer();
})();
