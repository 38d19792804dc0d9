// The opt-outs view: the suppression list paged and searched, numbers added by hand or from
// a file, one removed. Everything goes through the same JSON API as curl (/suppressions).
"use strict";

(() => {
  const PAGE = 50;
  const REASONS = { keyword: "Replied with an opt-out word", manual: "Added by hand", import: "Imported" };
  const SET_ASIDE = { already_suppressed: "already on the list" };
  const body = document.getElementById("optouts");
  const search = document.getElementById("optout-q");
  const prev = document.getElementById("optouts-prev");
  const next = document.getElementById("optouts-next");
  let offset = 0;

  async function refresh() {
    const query = new URLSearchParams({ q: search.value.trim(), limit: PAGE, offset });
    const result = await App.api("GET", `/suppressions?${query}`);
    App.show(document.getElementById("optouts-error"), result.ok ? "" : App.problemText(result.problem));
    if (!result.ok) return;
    const { suppressions, total } = result.data;
    body.replaceChildren(...suppressions.map(row));
    document.getElementById("optouts-empty").hidden = total > 0 || search.value.trim() !== "";
    App.setText(document.getElementById("optouts-count"), total
      ? `${offset + 1}–${offset + suppressions.length} of ${total.toLocaleString()}` : "");
    prev.hidden = offset === 0;
    next.hidden = offset + suppressions.length >= total;
  }

  function row(entry) {
    const tr = App.el("tr");
    // Labelled, so a phone screen can show each row as a card of "label: value".
    const cells = [["Number", "phone", entry.phone], ["Why", "", REASONS[entry.reason] || entry.reason],
                   ["Since", "", App.clock(entry.at)], ["Source", "muted", entry.source]];
    for (const [label, className, text] of cells) {
      const td = App.el("td", className, text);
      td.dataset.label = label;
      tr.append(td);
    }
    const remove = App.el("button", "link", "Remove");
    remove.type = "button";
    remove.addEventListener("click", async () => {
      if (!confirm(`Send to ${entry.phone} again? It will get your next campaigns.`)) return;
      // Without the +: a path keeps it as is, and both spellings name the same number.
      const result = await App.api("DELETE", `/suppressions/${entry.phone.replace(/^\+/, "")}`);
      App.show(document.getElementById("optouts-error"), result.ok ? "" : App.problemText(result.problem));
      refresh();
    });
    const cell = App.el("td");
    cell.append(remove);
    tr.append(cell);
    return tr;
  }

  function report(result) {
    const error = document.getElementById("optout-add-error");
    App.show(error, result.ok ? "" : App.problemText(result.problem));
    if (!result.ok) return false;
    const { added, rejected } = result.data;
    const words = rejected.slice(0, 10).map((r) =>
      `${r.phone}: ${SET_ASIDE[r.reason] || App.errorWords(r.reason)}`);
    App.show(document.getElementById("optout-add-result"),
      [`Added ${added.length.toLocaleString()}.`,
       rejected.length ? `Set aside ${rejected.length.toLocaleString()}: ${words.join(" · ")}` : ""]
        .filter(Boolean).join(" "));
    offset = 0;
    refresh();
    return true;
  }

  document.getElementById("optout-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = document.getElementById("optout-numbers");
    const phones = field.value.split(/[\r\n,;\t]+/).map((p) => p.trim()).filter(Boolean);
    if (report(await App.api("POST", "/suppressions", { phones }))) field.value = "";
  });

  document.getElementById("optout-import").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("optout-file");
    if (!input.files.length) return;
    const form = new FormData();
    form.append("file", input.files[0]);
    if (report(await App.api("POST", "/suppressions/import", form))) input.value = "";
  });

  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { offset = 0; refresh(); }, 250);
  });
  document.getElementById("optout-search").addEventListener("submit", (e) => e.preventDefault());
  prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refresh(); });
  next.addEventListener("click", () => { offset += PAGE; refresh(); });
  refresh();
})();
