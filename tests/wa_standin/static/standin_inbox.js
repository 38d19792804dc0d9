// The incoming side of the stand-in page: the chat list redrawn as messages arrive (rows move
// up, badges count), a row opens its chat, and the open chat shows new incoming bubbles at
// once. standin.js calls onState with every state it polls and refresh once the app mounts.
//
// The list is virtualised as the real one is: only the rows in view exist in the page, at most
// MAX_ROWS, placed by their index in a list as tall as all of them; scrolling the pane draws
// others. The filter chips above it (All, Unread, ...) choose which chats the list holds.
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const ROW_HEIGHT = 72, MAX_ROWS = 20;
  const FILTERS = { all: () => true, unread: (c) => c.unread > 0, favorites: () => false, group: () => false };
  let chats = [], rowsHtml = [], filter = "all", drawn = null, fetching = false, again = false;

  // The server counts a chat as read while a page shows it; tell it when this page goes.
  window.addEventListener("pagehide", () => {
    const cfg = JSON.parse(document.getElementById("standin-config").textContent);
    if (cfg.page) navigator.sendBeacon(`/_standin/api/closed?page=${cfg.page}`);
  });

  document.addEventListener("click", (e) => {
    const row = e.target.closest && e.target.closest("#pane-side [role='listitem']");
    // Opening a chat reads it, however it is opened: here by the same URL as a link.
    if (row && row.dataset.phone) location.assign(`/send?phone=${row.dataset.phone}`);
    const chip = e.target.closest && e.target.closest("[role='tablist'] [role='tab']");
    if (chip) choose(chip);
  });

  function choose(chip) {
    filter = chip.id.replace(/-filter$/, "");
    chip.parentElement.querySelectorAll("[role='tab']").forEach((tab) => {
      tab.setAttribute("aria-selected", String(tab === chip));
      tab.tabIndex = tab === chip ? 0 : -1;
    });
    $("#pane-side").scrollTop = 0;
    drawRows();
  }

  // The rows of the current filter that are in view, at most MAX_ROWS from the first one.
  function drawRows() {
    const list = $("#pane-side div[aria-label='Chat list']"), pane = $("#pane-side");
    if (!list) return;
    const shown = chats.map((c, i) => i).filter((i) => FILTERS[filter](chats[i]));
    const first = Math.max(0, Math.min(Math.floor(pane.scrollTop / ROW_HEIGHT), shown.length - MAX_ROWS));
    const inView = shown.slice(first, first + MAX_ROWS);
    const key = `${filter}|${first}|${inView.map((i) => rowsHtml[i]).join("")}`;
    if (key === drawn) return;
    drawn = key;
    list.style.height = `${shown.length * ROW_HEIGHT}px`;
    list.setAttribute("aria-rowcount", String(shown.length));
    const holder = document.createElement("template");
    holder.innerHTML = inView.map((i) => rowsHtml[i]).join("");
    Array.from(holder.content.children).forEach((row, k) => {
      row.style.transform = `translateY(${(first + k) * ROW_HEIGHT}px)`;
      row.setAttribute("aria-rowindex", String(first + k + 1));
    });
    list.replaceChildren(holder.content);
    const empty = $("#pane-side .list-empty");
    empty.textContent = filter === "all" ? "" : `No ${filter} chats`;
    empty.hidden = shown.length > 0 || filter === "all";
  }

  function onState(s) {
    if (s.rows_html === undefined) return;
    chats = s.chats;
    rowsHtml = s.rows_html;
    drawRows();
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
    onState(s, cfg) { onState(s); fetchIncoming(cfg); },
    refresh(cfg) {
      // Mounted: draw the rows the page came with at once, and again as the pane scrolls.
      const pane = $("#pane-side");
      if (pane) pane.addEventListener("scroll", drawRows);
      drawn = null;
      onState(cfg);
      fetchIncoming(cfg);
    },
  };
})();
