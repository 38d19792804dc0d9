// One campaign: its progress and controls, and its recipients page by page (limit/offset, so
// a list of 100,000 is as quick as one of 10), filtered by status or searched (`q`).
"use strict";

(() => {
  const section = document.getElementById("job");
  const jobId = section.dataset.jobId;
  const base = `/jobs/${encodeURIComponent(jobId)}`;
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  const ACTIVE = ["scheduled", "pending", "running", "paused", "waiting_for_login", "waiting_for_gateway"];
  const UNKNOWN_TIP = "The worker stopped mid-send and could not tell whether it went out; "
    + "it will not be re-sent by itself.";
  let offset = 0;
  let status = "";
  let query = "";
  let lastJob = null;
  let messagesSeq = 0;
  let searchTimer = null;
  let activitySignature = "";
  let activityAt = 0;
  const MAX_BARS = 48;
  const SVG = "http://www.w3.org/2000/svg";
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
    drawOutcome(lastJob);
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

  // The outcome at a glance. The numbers come from each status object (the same as
  // /activity's totals); the chart is asked for only when they moved or every 30 s, since a
  // 100,000-row job's activity is a real query and a reply from someone who already replied
  // moves no number.
  function drawOutcome(job) {
    const c = job.counts;
    const totals = { queued: job.total, sent: c.sent + c.delivered, delivered: c.delivered,
                     replied: job.replies, opted_out: job.opted_out, failed: c.failed };
    for (const node of $("outcome").querySelectorAll("[data-total]")) {
      App.setText(node.querySelector("dd"), (totals[node.dataset.total] || 0).toLocaleString());
    }
  }

  async function refreshActivity() {
    if (!lastJob) return;
    const signature = JSON.stringify([lastJob.counts, lastJob.replies, lastJob.opted_out]);
    if (signature === activitySignature && Date.now() - activityAt < 30000) return;
    const result = await App.api("GET", `${base}/activity`);
    if (!result.ok) return; // the status refresh shows what is wrong
    activitySignature = signature;
    activityAt = Date.now();
    // While it runs, the chart reaches the current hour, so a pause shows as a gap.
    drawActivity(result.data, ACTIVE.includes(lastJob.status) ? result.serverNow : 0);
  }

  function drawActivity(data, now) {
    const step = data.bucket_seconds * 1000;
    const times = data.buckets.map((b) => Date.parse(b.at));
    $("activity").hidden = !times.length;
    $("activity-empty").hidden = times.length > 0;
    if (!times.length) return;
    const first = times[0];
    const last = Math.max(times[times.length - 1], Math.floor(now / step) * step);
    const hours = Math.round((last - first) / step) + 1;
    const per = Math.ceil(hours / MAX_BARS); // a long campaign: several hours a bar
    const bars = Array.from({ length: Math.ceil(hours / per) },
      (_, i) => ({ at: first + i * per * step, sent: 0, failed: 0, replies: 0 }));
    data.buckets.forEach((b, i) => {
      const bar = bars[Math.floor(Math.round((times[i] - first) / step) / per)];
      bar.sent += b.sent; bar.failed += b.failed; bar.replies += b.replies;
    });
    const unit = per === 1 ? "hour" : `${per} hours`;
    App.setText($("activity-bin"), `per ${unit}`);
    const sends = plot($("activity-sends"), bars, ["sent", "failed"], step * per);
    const replies = plot($("activity-replies"), bars, ["replies"], step * per);
    App.setText($("activity-sends-label"), `Sent and failed · at most ${sends.toLocaleString()} per ${unit}`);
    App.setText($("activity-replies-label"), `Replies · at most ${replies.toLocaleString()} per ${unit}`);
    App.setText($("activity-from"), App.clock(new Date(first).toISOString()));
    App.setText($("activity-to"), App.clock(new Date(last + step).toISOString()));
  }

  /** Stacked bars of `keys` into `box` as a new SVG, on its own scale; the highest bar. */
  function plot(box, bars, keys, width) {
    const high = Math.max(1, ...bars.map((bar) => keys.reduce((sum, k) => sum + bar[k], 0)));
    const svg = svgEl("svg", { viewBox: `0 0 ${bars.length * 10} 100`, preserveAspectRatio: "none",
                               class: "chart", role: "img" });
    const said = keys.map((k) => `${bars.reduce((sum, bar) => sum + bar[k], 0).toLocaleString()} ${k}`);
    svg.setAttribute("aria-label", `${said.join(", ")}, ${bars.length} bars`);
    bars.forEach((bar, i) => {
      const group = svgEl("g", {});
      let top = 100;
      for (const key of keys) {
        if (!bar[key]) continue;
        const height = Math.max(2, (bar[key] / high) * 96); // one reply still shows
        top -= height;
        group.append(svgEl("rect", { x: i * 10 + 1, y: top, width: 8, height, class: `bar bar-${key}` }));
      }
      const title = svgEl("title", {});
      title.textContent = `${App.clock(new Date(bar.at).toISOString())}–`
        + `${App.clock(new Date(bar.at + width).toISOString())}: `
        + keys.map((k) => `${bar[k].toLocaleString()} ${k}`).join(", ");
      group.append(title);
      svg.append(group);
    });
    box.replaceChildren(svg);
    return high;
  }

  function svgEl(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    return node;
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

  // While the campaign runs, everything refreshes; once it is over, the recipients one last
  // time, and the outcome every 30 s on: replies and opt-outs still come in after the sends.
  let ticks = 0;
  App.poll(async () => {
    const wasActive = !lastJob || ACTIVE.includes(lastJob.status);
    ticks += 1;
    if (!wasActive && ticks % 15) return;
    await refreshJob();
    if (wasActive) await refreshMessages();
    await refreshActivity();
  }, 2000);
})();
