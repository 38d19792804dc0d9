// One campaign: its progress and controls, and its recipients page by page (limit/offset, so
// a list of 100,000 is as quick as one of 10), filtered by status or searched (`q`).
"use strict";

(() => {
  const section = document.getElementById("job");
  const jobId = section.dataset.jobId;
  const base = `/jobs/${encodeURIComponent(jobId)}`;
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  const ACTIVE = ["pending", "running", "paused", "waiting_for_login", "waiting_for_gateway"];
  const UNKNOWN_TIP = "The worker stopped mid-send and could not tell whether it went out; "
    + "it will not be re-sent by itself.";
  let offset = 0;
  let status = "";
  let query = "";
  let lastJob = null;
  let messagesSeq = 0;
  let searchTimer = null;
  const labels = [...$("messages").tHead.rows[0].cells].map((th) => th.textContent);

  for (const time of document.querySelectorAll("time[datetime]")) {
    time.textContent = App.clock(time.getAttribute("datetime"));
  }
  App.bindMoves(section, () => jobId);

  async function refreshJob() {
    const result = await App.api("GET", `/status/${encodeURIComponent(jobId)}`);
    if (!result.ok) { App.show(section.querySelector(".job-error"), App.problemText(result.problem)); return; }
    lastJob = result.data;
    App.renderJob(section, lastJob);
    $("unknown-note").hidden = !lastJob.counts.unknown;
    drawResend(lastJob);
    for (const option of $("filter-status").options) {
      const label = option.value ? `${App.MESSAGE_WORDS[option.value] || option.value} (${lastJob.counts[option.value].toLocaleString()})`
        : `All (${lastJob.total.toLocaleString()})`;
      App.setText(option, label);
    }
  }

  async function refreshMessages() {
    const seq = ++messagesSeq;
    const params = new URLSearchParams({ limit: PAGE, offset });
    if (status) params.set("status", status);
    if (query) params.set("q", query);
    const result = await App.api("GET", `${base}/messages?${params}`);
    if (seq !== messagesSeq) return; // the filter changed meanwhile
    App.show($("messages-error"), result.ok ? "" : App.problemText(result.problem));
    if (!result.ok) return;
    const { messages, total } = result.data;
    if (offset && offset >= total) { offset = Math.max(0, Math.floor((total - 1) / PAGE) * PAGE); refreshMessages(); return; }
    drawMessages(messages);
    $("messages-empty").hidden = total > 0;
    App.setText($("page-range"), total ? `${(offset + 1).toLocaleString()}–${(offset + messages.length).toLocaleString()} of ${total.toLocaleString()}` : "");
    $("page-prev").disabled = offset === 0;
    $("page-next").disabled = offset + PAGE >= total;
  }

  function drawMessages(messages) {
    // Rows are kept per message id and updated in place, so a refresh does not blink.
    const body = $("messages").tBodies[0];
    const old = new Map([...body.rows].map((tr) => [tr.dataset.id, tr]));
    messages.forEach((m, index) => {
      let tr = old.get(String(m.id));
      if (!tr) {
        tr = App.el("tr");
        tr.dataset.id = m.id;
        ["num", "phone", "name", "status", "num attempts", "error", "sent"].forEach((name, i) => {
          const td = App.el("td", name);
          td.dataset.label = labels[i]; // a phone shows each row as a card of label: value
          tr.append(td);
        });
      }
      old.delete(String(m.id));
      tr.className = `status-${m.status}`;
      const cells = tr.cells;
      App.setText(cells[0], String(m.row ?? ""));
      App.setText(cells[1], m.phone);
      App.setText(cells[2], m.name || "");
      App.setText(cells[3], App.MESSAGE_WORDS[m.status] || m.status);
      App.setText(cells[4], String(m.attempts));
      App.setText(cells[5], App.errorWords(m.error));
      cells[5].title = m.error || "";
      App.setText(cells[6], App.clock(m.sent_at));
      tr.title = m.status === "unknown" ? UNKNOWN_TIP : "";
      if (body.rows[index] !== tr) body.insertBefore(tr, body.rows[index] || null);
    });
    for (const tr of old.values()) tr.remove();
  }

  // Send again: offered once the campaign is over, for the states it has rows in.
  function drawResend(job) {
    const over = !ACTIVE.includes(job.status);
    let any = false;
    for (const label of $("resend").querySelectorAll("label[data-status]")) {
      const count = job.counts[label.dataset.status] || 0;
      label.hidden = count === 0;
      any = any || count > 0;
      App.setText(label.querySelector(".resend-label"),
        `${App.MESSAGE_WORDS[label.dataset.status]} (${count.toLocaleString()})`);
    }
    $("resend").hidden = !(over && any);
    showUnknownWarning();
  }

  function chosen() {
    return [...$("resend").querySelectorAll("input[name=resend]:checked")]
      .filter((box) => !box.closest("label").hidden).map((box) => box.value);
  }

  function showUnknownWarning() {
    $("resend-unknown-warning").hidden = !chosen().includes("unknown");
  }

  $("resend").addEventListener("change", showUnknownWarning);
  $("resend-button").addEventListener("click", async () => {
    const statuses = chosen();
    if (!statuses.length) { App.show($("resend-error"), "Choose which messages to send again."); return; }
    $("resend-button").disabled = true;
    const result = await App.api("POST", `${base}/resend`, { statuses });
    $("resend-button").disabled = false;
    App.show($("resend-error"), result.ok ? "" : App.problemText(result.problem));
    if (result.ok) window.location.assign(`/app/jobs/${encodeURIComponent(result.data.job_id)}`);
  });

  $("filter-status").addEventListener("change", (event) => {
    status = event.target.value;
    offset = 0;
    refreshMessages();
  });
  $("filter-q").addEventListener("input", (event) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { query = event.target.value.trim(); offset = 0; refreshMessages(); }, 300);
  });
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("page-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refreshMessages(); });
  $("page-next").addEventListener("click", () => { offset += PAGE; refreshMessages(); });

  // While the campaign runs, both refresh; once it is over, one last time and then rest.
  App.poll(async () => {
    const wasActive = !lastJob || ACTIVE.includes(lastJob.status);
    if (!wasActive) return;
    await refreshJob();
    await refreshMessages();
  }, 2000);
})();
