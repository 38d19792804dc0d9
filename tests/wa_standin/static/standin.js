// Behaviour of the WhatsApp Web stand-in page: boot, QR rotation, login/logout by polling,
// compose box, attachments, ticks and modals. Plain JS, no libraries, nothing external.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("standin-config").textContent);
  const RETRY_MS = 200; // after a failed poll; a good one is held by the server until a change
  const $ = (sel, root) => (root || document).querySelector(sel);
  const clone = (id) => document.getElementById(id).content.firstElementChild.cloneNode(true);
  let mounted = false;
  let useHereClearedAt = 0;
  let version = -1; // the state last seen; the server answers at once when it moved on
  // A held poll left open by a page being navigated away keeps one of the browser's six
  // connections to this host until the server answers; cut it as the page goes.
  const leaving = new AbortController();
  window.addEventListener("pagehide", () => leaving.abort());

  // ---- boot: a startup screen first, then the QR landing or the app shell -------------
  function mount() {
    $("#app").replaceChildren(document.getElementById("boot").content.cloneNode(true));
    mounted = true;
    if (cfg.logged_in) { initShell(); window.standinInbox.refresh(cfg); }
    document.querySelectorAll("div[data-ref]").forEach((el) => drawQr(el.dataset.ref));
  }

  async function poll() {
    const started = Date.now();
    let s;
    try {
      s = await (await fetch(`/_standin/api/state?since=${version}&page=${cfg.page || ""}${cfg.phone ? "&hold=1" : ""}`,
                             { cache: "no-store", signal: leaving.signal })).json();
    } catch (e) {
      return false; // server gone or busy: try again shortly
    }
    version = s.version;
    if (!cfg.logged_in) {
      // Logged in meanwhile (QR "scanned"): reload as the real page does, into the app.
      if (s.logged_in) return location.search.includes("post_logout") ? location.replace("/") : location.reload();
      if (mounted) drawQr(s.qr);
    } else if (!s.logged_in || s.session !== cfg.session) {
      location.replace("/?post_logout=1");
    } else if (mounted) {
      if (started > useHereClearedAt) showUseHere(s.use_here);
      window.standinInbox.onState(s, cfg);
    }
  }

  async function pollLoop() {
    const ok = await poll();
    setTimeout(pollLoop, ok === false ? RETRY_MS : 20);
  }

  // ---- QR: a pattern derived from the payload, so a screenshot changes when it rotates --
  function drawQr(payload) {
    const holder = $("div[data-ref]");
    if (!holder || (holder.dataset.drawn === payload)) return;
    holder.setAttribute("data-ref", payload);
    holder.dataset.drawn = payload;
    let seed = 2166136261; // FNV-1a over the payload seeds a small PRNG (mulberry32)
    for (const ch of payload) seed = Math.imul(seed ^ ch.charCodeAt(0), 16777619);
    const rnd = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const canvas = $("canvas", holder), ctx = canvas.getContext("2d");
    const n = 29, cell = Math.floor(canvas.width / (n + 4)), off = (canvas.width - n * cell) / 2;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#122e31";
    const finder = (x, y) => x < 8 && y < 8 || x >= n - 8 && y < 8 || x < 8 && y >= n - 8;
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if (!finder(x, y) && rnd() < 0.5) ctx.fillRect(off + x * cell, off + y * cell, cell, cell);
    for (const [fx, fy] of [[0, 0], [n - 7, 0], [0, n - 7]]) {
      for (const [inset, color] of [[0, "#122e31"], [1, "#fff"], [2, "#122e31"]]) {
        ctx.fillStyle = color;
        ctx.fillRect(off + (fx + inset) * cell, off + (fy + inset) * cell, (7 - 2 * inset) * cell, (7 - 2 * inset) * cell);
      }
    }
  }

  // ---- app shell ------------------------------------------------------------------------
  function initShell() {
    document.querySelectorAll("div[data-animate-modal-popup] div[role='button']").forEach((ok) =>
      ok.addEventListener("click", () => ok.closest("[data-animate-modal-popup]").remove()));
    showUseHere(cfg.use_here);
    const box = $("#main footer div[contenteditable='true']");
    if (box) initChat(box);
  }

  function showUseHere(on) {
    const modal = $(".use-here");
    if (on && !modal) {
      const m = clone("use-here-tpl");
      $("div[role='button']", m).addEventListener("click", async () => {
        useHereClearedAt = Date.now();
        m.remove();
        await fetch("/_standin/api/use_here", { method: "POST" });
      });
      $("#app").appendChild(m);
    } else if (!on && modal) {
      modal.remove();
    }
  }

  // The text a person sees in a contenteditable, byte for byte. innerText is not enough:
  // Chrome turns an inserted "\n" into <div> lines and pads empty lines with a placeholder
  // <br>, which innerText counts as one more newline. So walk the DOM as lines: text (kept
  // as is, since white-space: pre-wrap stops Chrome from adding \u00a0), a <br> is a line
  // break unless it is the last thing in its block, and each <div>/<p> is a line of its own.
  // A forced break (a "\n" or a <br>) right before a block adds no empty line: the block
  // starts a line anyway. And where Chrome ends a block with a line break, it pads it with
  // a second "\n" instead of a <br>: that last "\n" is padding too (setBoxText below writes
  // a trailing newline the same way, with a <br>, so what it writes reads back unchanged).
  function boxText(box) {
    const lines = [""];
    let started = false, needBreak = false, fresh = false;
    const isBlock = (n) => n === box || n.nodeName === "DIV" || n.nodeName === "P";
    const ensureLine = () => {
      if (needBreak) { lines.push(""); needBreak = false; }
      started = true;
    };
    const walk = (node) => {
      for (const child of node.childNodes) {
        if (child.nodeType === Node.TEXT_NODE) {
          let data = child.data;
          if (!child.nextSibling && isBlock(node) && data.endsWith("\n")) data = data.slice(0, -1);
          if (data === "") continue;
          ensureLine();
          const [first, ...rest] = data.split("\n");
          lines[lines.length - 1] += first;
          lines.push(...rest);
          fresh = rest.length > 0 && rest[rest.length - 1] === "";
        } else if (child.nodeName === "BR") {
          ensureLine();
          const placeholder = !child.nextSibling && isBlock(child.parentNode);
          if (!placeholder) lines.push("");
          fresh = !placeholder;
        } else if (isBlock(child)) {
          needBreak = started && !fresh;
          walk(child);
          needBreak = started;
          fresh = false;
        } else if (child.nodeType === Node.ELEMENT_NODE) {
          walk(child);
        }
      }
    };
    walk(box);
    return lines.join("\n");
  }
  window.standinBoxText = boxText; // exposed so the stand-in's own tests can check it

  function setBoxText(box, text) {
    box.textContent = text;
    if (text.endsWith("\n")) box.appendChild(document.createElement("br"));
  }

  // Enter sends, Shift+Enter is a new line, paste is plain text: as in WhatsApp's editor.
  function editable(box, onSend) {
    box.addEventListener("keydown", (e) => {
      if (e.key !== "Enter" || e.isComposing) return;
      e.preventDefault();
      if (e.shiftKey) document.execCommand("insertLineBreak");
      else onSend();
    });
    box.addEventListener("paste", (e) => {
      e.preventDefault();
      document.execCommand("insertText", false, e.clipboardData.getData("text/plain"));
    });
  }

  function initChat(box) {
    const main = $("#main"), slot = $(".send-slot", main);
    const updateSend = () => {
      const hasText = boxText(box) !== "";
      const current = slot.firstElementChild;
      if (current && current.classList.contains("send-btn") === hasText) return;
      const button = clone(hasText ? "send-tpl" : "mic-tpl");
      if (hasText) button.addEventListener("click", sendText);
      slot.replaceChildren(button);
    };
    async function sendText() {
      const text = boxText(box);
      if (text.trim() === "") return;
      box.replaceChildren();
      updateSend();
      post(addBubble(text, null), { body: JSON.stringify({ phone: cfg.phone, text }), headers: { "Content-Type": "application/json" } });
    }
    editable(box, sendText);
    box.addEventListener("input", updateSend);
    updateSend();
    $("div[aria-label='Attach']", main).addEventListener("click", () => toggleMenu(main, box, updateSend));
    const list = $(".conversation", main);
    list.scrollTop = list.scrollHeight;
  }

  function addBubble(text, attachment) {
    const row = clone("bubble-tpl"), list = $("#main .conversation");
    const textEl = $(".selectable-text", row), docEl = $(".doc", row);
    if (text) textEl.textContent = text; else textEl.parentElement.remove();
    if (attachment) { $(".doc-name", docEl).textContent = attachment; $(".doc-name", docEl).title = attachment; } else docEl.remove();
    $(".message-out", row).dataset.id = `true_${cfg.phone}@c.us_${list.children.length + 1}`;
    list.appendChild(row);
    list.scrollTop = list.scrollHeight;
    return row;
  }

  // Upload, then turn the clock into a tick after the delay the server asks for (never if null).
  async function post(bubble, init) {
    let response, body = {};
    try {
      response = await fetch("/_standin/api/send", { method: "POST", ...init });
      body = await response.json();
    } catch (e) {
      return; // left with its clock, as a real message that never reached the server
    }
    if (response.ok && body.tick_after !== null) {
      setTimeout(() => {
        const tick = $("span[data-icon='msg-time']", bubble);
        tick.setAttribute("data-icon", "msg-check");
        tick.setAttribute("aria-label", " Sent ");
      }, body.tick_after * 1000);
    } else if (body.error === "logged_out") {
      location.replace("/?post_logout=1");
    }
  }

  // ---- attachments: menu with hidden file inputs, then a preview with a caption ---------
  function toggleMenu(main, box, updateSend) {
    const open = $(".attach-menu", main);
    if (open) return open.remove();
    const menu = clone("attach-menu-tpl");
    menu.querySelectorAll("li").forEach((item) => {
      const input = $("input", item);
      item.addEventListener("click", (e) => { if (e.target !== input) input.click(); });
      input.addEventListener("change", () => {
        if (input.files.length) openPreview(main, box, updateSend, input.files[0]);
        menu.remove();
      });
    });
    $(".attach-slot", main).appendChild(menu);
  }

  function openPreview(main, box, updateSend, file) {
    const preview = clone("preview-tpl"), caption = $("[aria-label='Add a caption']", preview);
    // The real site moves what was typed in the compose box into the caption.
    setBoxText(caption, boxText(box));
    box.replaceChildren();
    updateSend();
    $(".preview-name", preview).textContent = file.name;
    if (file.type.startsWith("image/")) {
      const img = $("img", preview);
      img.src = URL.createObjectURL(file);
      img.hidden = false;
    }
    const close = () => { preview.remove(); main.classList.remove("previewing"); };
    const send = () => {
      const text = boxText(caption), form = new FormData();
      close();
      // Text fields of a form are sent with \r\n for every newline; JSON keeps them exact.
      form.append("json", JSON.stringify({ phone: cfg.phone, caption: text }));
      form.append("file", file, file.name);
      post(addBubble(text, file.name), { body: form });
    };
    editable(caption, send);
    $("div[role='button'][aria-label='Send']", preview).addEventListener("click", send);
    $("div[role='button'][aria-label='Close']", preview).addEventListener("click", close);
    main.classList.add("previewing");
    main.prepend(preview); // first in document order, ahead of the (hidden) compose box
    caption.focus();
  }

  pollLoop();
  if (cfg.boot_delay > 0) setTimeout(mount, cfg.boot_delay * 1000);
  else mount();
})();
