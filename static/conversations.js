// The conversations view: the inbox (one thread per contact) beside the open thread, its
// bubbles with live status ticks, and a reply box. Everything goes through the same JSON API
// as curl (/conversations...). One poll loop keeps it all fresh: every 1.5 s while the page is
// visible (a new message shows within 2 s), none while it is hidden, never two at once.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const inbox = $("inbox");
  const CHANNELS = JSON.parse(inbox.dataset.channels || "{}");
  const EVERY = 1500; // ms between the end of one poll and the start of the next
  const PAGE = 50; // threads, and messages, per page
  const MAX_SHOWN = 500; // the API's largest page; past that, search finds a thread
  // WhatsApp's marks, which people read at a glance; the word is there for screen readers.
  const TICKS = { pending: "◷", retrying: "◷", sending: "◷", sent: "✓", delivered: "✓✓",
                  failed: "!", cancelled: "⊘", unknown: "?" };
  const EMPTY = { all: "No conversations yet: one starts when a message is sent to a number or someone writes.",
                  unread: "Nothing unread.", starred: "No starred conversations." };

  const list = $("threads");
  const template = $("thread-item");
  const listNodes = new Map(); // phone -> <li>
  const thread = $("thread");
  const scroller = $("thread-scroll");
  const box = $("reply-text");

  const state = {
    filter: "all",
    q: "",
    shown: PAGE,
    phone: canonical(inbox.dataset.phone),
    conversation: null, // the open thread's conversation object
    messages: new Map(), // "in:12" / "out:7" -> { m, node }
    total: 0, // messages in the open thread, as the API last said
    listed: false, // the open thread was in the last list answer (so no need to ask for it)
    keepUnread: false, // "Mark unread" was pressed: new messages do not mark it read again
    toBottom: true, // scroll to the newest bubble after the next draw
  };

  /** "+5511..." for a number however the URL wrote it; anything else as is (the API 404s). */
  function canonical(raw) {
    const text = (raw || "").trim();
    if (!text) return null;
    return /^\+?[1-9][0-9]{2,14}$/.test(text) ? `+${text.replace(/^\+/, "")}` : text;
  }

  // Without the +: a path keeps it as is, and both spellings name the same conversation.
  const urlKey = (phone) => encodeURIComponent(phone.replace(/^\+/, ""));
  const listKey = () => `${state.filter}|${state.q}|${state.shown}`;
  const label = (channel) => CHANNELS[channel] || channel || "";

  function newKey() {
    // crypto.randomUUID needs https or localhost; getRandomValues works on a LAN address too.
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- the poll loop -----------------------------------------------------------------------

  let busy = false;
  let again = false;
  let timer = null;

  /** Refresh now (or right after the poll in flight); then again every EVERY ms while visible. */
  async function tick() {
    clearTimeout(timer);
    if (busy) { again = true; return; }
    if (document.visibilityState === "hidden") return; // visibilitychange starts it again
    busy = true;
    try {
      await Promise.all([refreshList(), refreshThread(), refreshUnreadCount()]);
    } finally {
      busy = false;
      if (again) { again = false; tick(); } else timer = setTimeout(tick, EVERY);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") tick(); else clearTimeout(timer);
  });

  // --- the list ----------------------------------------------------------------------------

  async function refreshList() {
    const asked = listKey();
    const query = new URLSearchParams({ filter: state.filter, q: state.q, limit: state.shown });
    const result = await App.api("GET", `/conversations?${query}`);
    if (asked !== listKey()) return; // the filter or search changed meanwhile: a new poll follows
    App.show($("threads-error"), result.ok ? "" : App.problemText(result.problem));
    if (!result.ok) return;
    const { conversations, total } = result.data;
    const wanted = new Set(conversations.map((c) => c.phone));
    for (const [phone, node] of listNodes) {
      if (!wanted.has(phone)) { node.remove(); listNodes.delete(phone); }
    }
    conversations.forEach((c, index) => {
      const node = listNodes.get(c.phone) || listItem(c.phone);
      if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
      drawItem(node, c);
    });
    App.show($("threads-empty"), conversations.length ? ""
      : state.q ? `No conversation matches “${state.q}”.` : EMPTY[state.filter]);
    const more = $("threads-more");
    more.hidden = total <= conversations.length || state.shown >= MAX_SHOWN;
    App.setText(more, `Show more conversations (${(total - conversations.length).toLocaleString()} more)`);
    const open = conversations.find((c) => c.phone === state.phone);
    state.listed = Boolean(open);
    if (open) drawHead(open);
    if (state.filter === "unread" && !state.q) drawUnreadCount(total);
  }

  function listItem(phone) {
    const node = template.content.firstElementChild.cloneNode(true);
    node.dataset.phone = phone;
    const link = node.querySelector(".thread-link");
    link.href = `/app/conversations/${urlKey(phone)}`;
    link.addEventListener("click", (event) => {
      // A new tab or window keeps its own way; a plain click opens the thread in place.
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      openThread(phone, true);
    });
    listNodes.set(phone, node);
    return node;
  }

  function drawItem(node, c) {
    node.classList.toggle("unread", c.unread > 0);
    node.classList.toggle("starred", c.starred);
    markCurrent(node);
    App.setText(node.querySelector(".thread-star"), c.starred ? "★" : "");
    App.setText(node.querySelector(".thread-name"), c.name || c.phone);
    node.querySelector(".thread-link").title = c.phone; // two contacts may share a name
    const badge = node.querySelector(".thread-unread");
    App.setText(badge, String(c.unread));
    badge.hidden = !c.unread;
    const time = node.querySelector(".thread-time");
    App.setText(time, App.clock(c.last_message_at));
    time.dateTime = c.last_message_at || "";
    App.setText(node.querySelector(".thread-last"),
                `${c.last_direction === "out" ? "You: " : ""}${c.last_text || ""}`);
  }

  function markCurrent(node) {
    const current = node.dataset.phone === state.phone;
    node.classList.toggle("current", current);
    const link = node.querySelector(".thread-link");
    if (current) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
  }

  async function refreshUnreadCount() {
    if (state.filter === "unread" && !state.q) return; // the list's own total says it
    const result = await App.api("GET", "/conversations?filter=unread&limit=1");
    if (result.ok) drawUnreadCount(result.data.total);
  }

  function drawUnreadCount(total) {
    const badge = $("nav-unread");
    if (!badge) return;
    App.setText(badge, total.toLocaleString());
    badge.hidden = !total;
  }

  // --- one thread --------------------------------------------------------------------------

  function openThread(phone, push) {
    if (phone !== state.phone) {
      Object.assign(state, { phone, conversation: null, total: 0, listed: false,
                             keepUnread: false, toBottom: true });
      state.messages.clear();
      thread.replaceChildren();
      $("thread-older").hidden = true;
      App.show($("thread-error"), "");
      App.show($("reply-error"), "");
      box.value = ""; // a draft belongs to the contact it was written to
      replyKey = newKey();
      if (phone) {
        App.setText($("thread-title"), phone);
        App.setText($("thread-phone"), "");
      }
    }
    if (phone) inbox.dataset.open = "1"; else delete inbox.dataset.open;
    if (!phone) document.title = "Conversations · Bulk sender";
    $("thread-box").hidden = !phone;
    $("thread-none").hidden = Boolean(phone);
    if (push) history.pushState(null, "", phone ? `/app/conversations/${urlKey(phone)}` : "/app/conversations");
    for (const node of listNodes.values()) markCurrent(node);
    if (phone && push) box.focus({ preventScroll: true });
    tick();
  }

  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/^\/app\/conversations\/([^/]+)$/);
    openThread(match ? canonical(decodeURIComponent(match[1])) : null, false);
  });

  $("thread-back").addEventListener("click", (event) => {
    event.preventDefault();
    openThread(null, true);
  });

  async function refreshThread() {
    const phone = state.phone;
    if (!phone) return;
    const [page, conversation] = await Promise.all([
      App.api("GET", `/conversations/${urlKey(phone)}/messages?limit=${PAGE}&offset=0`),
      state.listed && state.conversation ? null : App.api("GET", `/conversations/${urlKey(phone)}`),
    ]);
    if (phone !== state.phone) return; // another thread was opened meanwhile
    const failed = [page, conversation].find((r) => r && !r.ok);
    App.show($("thread-error"), failed ? App.problemText(failed.problem) : "");
    if (failed) return;
    if (conversation) drawHead(conversation.data);
    state.total = page.data.total;
    merge(page.data.messages);
    // Open and on screen is read, also for what arrives while it is open; unless the reader
    // asked to keep it unread, to come back to it.
    if (state.conversation && state.conversation.unread && !state.keepUnread) await setFlag("read");
    drawHead(state.conversation);
  }

  /** Draw `messages` into the thread: new ones added, known ones updated, all in time order. */
  function merge(messages) {
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    let added = false;
    for (const m of messages) {
      const key = `${m.direction}:${m.id}`;
      let entry = state.messages.get(key);
      if (!entry) {
        entry = { node: bubble() };
        state.messages.set(key, entry);
        added = true;
      }
      entry.m = m;
      drawBubble(entry.node, m);
    }
    // An outbound row's time is when it was sent, so a message may move once it goes out.
    const sorted = [...state.messages.values()].sort((a, b) => compare(a.m, b.m));
    sorted.forEach((entry, i) => {
      if (thread.children[i] !== entry.node) thread.insertBefore(entry.node, thread.children[i] || null);
    });
    $("thread-older").hidden = state.messages.size >= state.total;
    if (added && (nearBottom || state.toBottom)) scroller.scrollTop = scroller.scrollHeight;
    if (messages.length) state.toBottom = false;
    return added;
  }

  // The API's order: time, then "in" before "out", then id.
  function compare(a, b) {
    const at = (a.at || "").localeCompare(b.at || "");
    if (at) return at;
    if (a.direction !== b.direction) return a.direction === "in" ? -1 : 1;
    return a.id - b.id;
  }

  function bubble() {
    const node = App.el("li", "msg");
    const meta = App.el("p", "msg-meta");
    const status = App.el("span", "msg-tick");
    status.append(App.el("span", "msg-mark"), App.el("span", "visually-hidden msg-word"));
    meta.append(App.el("span", "msg-via"), App.el("time", "msg-time"), status);
    node.append(App.el("p", "msg-text"), meta, App.el("p", "msg-error"));
    return node;
  }

  function drawBubble(node, m) {
    node.className = `msg msg-${m.direction}`;
    node.dataset.status = m.status;
    node.dataset.id = `${m.direction}:${m.id}`;
    App.setText(node.querySelector(".msg-text"), m.text);
    // Discreet: which channel, and which account (worker) sent or received it.
    App.setText(node.querySelector(".msg-via"), [label(m.channel), m.sender].filter(Boolean).join(" · "));
    const time = node.querySelector(".msg-time");
    App.setText(time, App.clock(m.at));
    time.dateTime = m.at || "";
    const status = node.querySelector(".msg-tick");
    status.hidden = m.direction !== "out";
    if (m.direction === "out") {
      const word = App.MESSAGE_WORDS[m.status] || m.status;
      App.setText(node.querySelector(".msg-mark"), TICKS[m.status] || "");
      App.setText(node.querySelector(".msg-word"), word);
      status.title = word;
    }
    // Why a message failed, in words, under it: the reader decides whether to write again.
    const why = node.querySelector(".msg-error");
    why.hidden = !(m.direction === "out" && m.status === "failed" && m.error);
    App.setText(why, why.hidden ? "" : App.errorWords(m.error));
  }

  function drawHead(c) {
    if (!c || c.phone !== state.phone) return;
    state.conversation = c;
    App.setText($("thread-title"), c.name || c.phone);
    document.title = `${c.name || c.phone} · Conversations · Bulk sender`; // tabs and history
    App.setText($("thread-phone"), [c.name ? c.phone : "", `last on ${label(c.channel)}`]
      .filter(Boolean).join(" · "));
    const star = $("thread-star");
    App.setText(star, c.starred ? "★ Starred" : "☆ Star");
    star.setAttribute("aria-pressed", String(c.starred));
    App.setText($("thread-unread"), c.unread ? "Mark read" : "Mark unread");
    App.setText($("reply-channel-auto"), `Automatic (${label(replyChannel(c))})`);
    const node = listNodes.get(c.phone);
    if (node) drawItem(node, c);
  }

  /** The channel the API picks: the one they last wrote from, else where we last wrote. */
  function replyChannel(c) {
    const inbound = [...state.messages.values()].map((e) => e.m).filter((m) => m.direction === "in");
    return inbound.length ? inbound.sort(compare).at(-1).channel : c.channel;
  }

  async function setFlag(move) {
    const phone = state.phone;
    const result = await App.api("POST", `/conversations/${urlKey(phone)}/${move}`);
    if (phone !== state.phone) return;
    App.show($("thread-error"), result.ok ? "" : App.problemText(result.problem));
    if (result.ok) drawHead(result.data);
  }

  $("thread-star").addEventListener("click", async () => {
    if (!state.conversation) return;
    await setFlag(state.conversation.starred ? "unstar" : "star");
    tick(); // the starred filter may now show it, or not
  });

  $("thread-unread").addEventListener("click", async () => {
    if (!state.conversation) return;
    state.keepUnread = !state.conversation.unread;
    await setFlag(state.conversation.unread ? "read" : "unread");
    tick();
  });

  $("thread-older").addEventListener("click", async (event) => {
    const phone = state.phone;
    const button = event.currentTarget;
    button.disabled = true;
    // Offset by what is shown: a message that came in meanwhile repeats one, never skips one.
    const result = await App.api("GET",
      `/conversations/${urlKey(phone)}/messages?limit=${PAGE}&offset=${state.messages.size}`);
    button.disabled = false;
    if (phone !== state.phone) return;
    App.show($("thread-error"), result.ok ? "" : App.problemText(result.problem));
    if (!result.ok) return;
    const before = scroller.scrollHeight - scroller.scrollTop; // keep the reader's place
    state.total = result.data.total;
    merge(result.data.messages);
    scroller.scrollTop = scroller.scrollHeight - before;
  });

  // --- replying ----------------------------------------------------------------------------

  const form = $("reply");
  const send = $("reply-send");
  let replyKey = newKey(); // one per reply: a double click or a retry of it never sends twice
  let sending = false;

  form.addEventListener("input", () => { replyKey = newKey(); }); // new text: a new reply

  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const phone = state.phone;
    if (sending || !phone || !box.value.trim()) return;
    sending = true;
    send.disabled = true;
    App.setText(send, "Sending…");
    const body = { text: box.value };
    if ($("reply-channel").value) body.channel = $("reply-channel").value;
    const result = await App.api("POST", `/conversations/${urlKey(phone)}/reply`, body,
                                 { headers: { "Idempotency-Key": replyKey } });
    sending = false;
    send.disabled = false;
    App.setText(send, "Send");
    if (phone !== state.phone) return;
    App.show($("reply-error"), result.ok ? "" : App.problemText(result.problem));
    if (!result.ok) return; // the text stays, and so does the key: sending again is a retry
    box.value = "";
    replyKey = newKey();
    state.toBottom = true;
    tick();
  });

  // --- filters and search ------------------------------------------------------------------

  for (const button of document.querySelectorAll("[data-filter]")) {
    button.addEventListener("click", () => {
      state.filter = button.dataset.filter;
      state.shown = PAGE;
      for (const b of document.querySelectorAll("[data-filter]")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      tick();
    });
  }

  let typing = null;
  $("thread-q").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.q = event.target.value.trim(); state.shown = PAGE; tick(); }, 250);
  });
  $("thread-search").addEventListener("submit", (event) => event.preventDefault());
  $("threads-more").addEventListener("click", () => {
    state.shown = Math.min(state.shown + PAGE, MAX_SHOWN);
    tick();
  });

  openThread(state.phone, false);
})();
