// The incoming side of the stand-in page: the chat list redrawn as messages arrive (rows move
// up, badges count), a row opens its chat, and the open chat shows new incoming bubbles at
// once. standin.js calls onState with every state it polls and refresh once the app mounts.
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  let shownRows = null, fetching = false, again = false;

  // The server counts a chat as read while a page shows it; tell it when this page goes.
  window.addEventListener("pagehide", () => {
    const cfg = JSON.parse(document.getElementById("standin-config").textContent);
    if (cfg.page) navigator.sendBeacon(`/_standin/api/closed?page=${cfg.page}`);
  });

  document.addEventListener("click", (e) => {
    const row = e.target.closest && e.target.closest("#pane-side [role='listitem']");
    // Opening a chat reads it, however it is opened: here by the same URL as a link.
    if (row && row.dataset.phone) location.assign(`/send?phone=${row.dataset.phone}`);
  });

  function drawRows(s) {
    const list = $("#pane-side div[aria-label='Chat list']");
    if (!list || s.chats_html === undefined || s.chats_html === shownRows) return;
    list.innerHTML = s.chats_html;
    list.setAttribute("aria-rowcount", String(s.chats.length));
    shownRows = s.chats_html;
  }

  // Append what arrived in the open chat after its last incoming bubble.
  async function fetchIncoming(cfg) {
    const list = $("#main .conversation");
    if (!list || !cfg.phone) return;
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const shown = list.querySelectorAll("[data-id^='false_']");
      const last = shown.length ? shown[shown.length - 1].dataset.id.split("_").pop() : "";
      const url = `/_standin/api/incoming?phone=${cfg.phone}&after=${last}&page=${cfg.page}`;
      const body = await (await fetch(url, { cache: "no-store" })).json();
      for (const m of body.messages) {
        if (list.querySelector(`[data-id$='_${m.id}']`)) continue;
        list.insertAdjacentHTML("beforeend", m.html);
      }
      if (body.messages.length) list.scrollTop = list.scrollHeight;
    } catch (e) {
      // the page is going away, or the server is: the next state change tries again
    } finally {
      fetching = false;
      if (again) { again = false; fetchIncoming(cfg); }
    }
  }

  window.standinInbox = {
    onState(s, cfg) { drawRows(s); fetchIncoming(cfg); },
    refresh(cfg) { shownRows = null; fetchIncoming(cfg); },
  };
})();
