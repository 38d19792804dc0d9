// Shared by every signed-in view of /app: calling the JSON API, showing its problems, words
// for states and durations, one job's progress drawn into existing nodes, the banners.
// Data from the API only ever reaches the page through textContent, never as HTML.
"use strict";

const App = (() => {
  let csrf = document.querySelector('meta[name="csrf-token"]').content;
  const moves = JSON.parse(document.body.dataset.moves || "{}");

  const JOB_WORDS = {
    scheduled: "Scheduled",
    pending: "Waiting to start",
    running: "Sending",
    paused: "Paused",
    waiting_for_login: "Waiting for WhatsApp login",
    waiting_for_gateway: "Waiting for the SMS phone",
    completed: "Finished",
    stopped: "Stopped",
  };
  const MESSAGE_WORDS = {
    pending: "Waiting",
    retrying: "Will retry",
    sending: "Sending now",
    sent: "Sent",
    delivered: "Delivered",
    failed: "Failed",
    cancelled: "Cancelled",
    unknown: "Unknown",
  };
  const ERROR_WORDS = {
    invalid_phone: "Not a valid phone number",
    duplicate: "Already in the list above",
    empty_message: "The message would be empty for this row",
    message_too_long: "The message would be too long for this row",
    not_on_whatsapp: "This number is not on WhatsApp",
    attachment_failed: "The attachment could not be sent",
    send_not_confirmed: "WhatsApp did not confirm the send",
    gateway_rejected: "The SMS phone refused it",
    session_lost: "WhatsApp logged out during the send",
    opted_out: "This person asked not to get messages (opt-out list)",
  };

  /** Call the API; resolves to {ok, status, data, problem, serverNow}, never rejects. */
  async function api(method, url, body, options = {}) {
    const result = await call(method, url, body, options);
    // Signed in again in another tab: this page's token is stale. Take the new one and
    // try once more, so what was typed here is not lost to a reload.
    if (result.status === 403 && method !== "GET" && await refreshCsrf()) {
      return call(method, url, body, options);
    }
    if (result.status === 401) {
      result.problem = { ...result.problem, errors: undefined,
        detail: "You are signed out. Sign in again in another tab, then try again here: "
                + "nothing you typed on this page is lost." };
    }
    return result;
  }

  async function refreshCsrf() {
    try {
      const response = await fetch("/app", { credentials: "same-origin", cache: "no-store" });
      // Parsed, never inserted: nothing in it runs or reaches this page but the token.
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const meta = page.querySelector('meta[name="csrf-token"]');
      if (!page.querySelector(".sign-out") || !meta || meta.content === csrf) return false;
      csrf = meta.content;
      for (const input of document.querySelectorAll('input[name="csrf"]')) input.value = csrf;
      return true;
    } catch (error) {
      return false;
    }
  }

  async function call(method, url, body, options) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    } catch (error) {
      offline(true);
      return { ok: false, status: 0, data: null,
               problem: { detail: "The server cannot be reached. Check that it is running." } };
    }
    offline(response.status === 401);
    let data = null;
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      try { data = await response.json(); } catch (error) { data = null; }
    }
    const problem = response.ok ? null
      : (data && data.detail ? data : { detail: `The server answered ${response.status}.` });
    // The server's clock, for ages of heartbeats (this browser's clock may be off).
    const serverNow = Date.parse(response.headers.get("Date") || "") || Date.now();
    return { ok: response.ok, status: response.status, data, problem, serverNow };
  }

  function offline(yes) {
    const banner = document.getElementById("banner-offline");
    if (banner) banner.hidden = !yes;
  }

  /** Run `step` now and again `every` ms after each run ends (never two at once). */
  function poll(step, every) {
    let timer = null;
    const run = async () => {
      clearTimeout(timer);
      try { await step(); } finally { timer = setTimeout(run, document.hidden ? every * 4 : every); }
    };
    run();
    return { now: run };
  }

  /** A problem's detail plus its `errors`, as one line of words. */
  function problemText(problem) {
    const extra = (problem.errors || [])
      .map((e) => (e.row !== undefined ? `row ${e.row}: ${e.message}` : e.message))
      .filter((m) => m && m !== problem.detail);
    return [problem.detail, ...extra.slice(0, 10)].join(" · ")
      + (extra.length > 10 ? ` · and ${extra.length - 10} more` : "");
  }

  function show(node, text) {
    if (!node) return;
    node.textContent = text || "";
    node.hidden = !text;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.round(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    return `${Math.floor(h / 24)} days ${h % 24} h`;
  }

  /** "10:42" for today, "23 Nov 10:42" otherwise, in the browser's time zone. */
  function clock(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (when.toDateString() === new Date().toDateString()) return time;
    return `${when.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
  }

  function errorWords(code) {
    if (!code) return "";
    if (code.startsWith("gateway_failed:")) return `The SMS phone could not send it (${code.slice(15)})`;
    return ERROR_WORDS[code] || code;
  }

  function countsText(job) {
    const c = job.counts;
    const waiting = c.pending + c.retrying;
    const parts = [];
    for (const [n, label] of [[c.sent, "sent"], [c.delivered, "delivered"], [c.sending, "sending"],
                              [waiting, "waiting"], [c.failed, "failed"], [c.unknown, "unknown"],
                              [c.cancelled, "cancelled"]]) {
      if (n) parts.push(`${n.toLocaleString()} ${label}`);
    }
    return parts.join(" · ") || "No recipients";
  }

  // Why nothing goes right now (the status object's `waiting`), in words.
  const WAITING_WORDS = {
    scheduled: "Scheduled: starts",
    daily_cap: "Waiting for the sender's daily limit: goes on",
    hourly_cap: "Waiting for the sender's hourly limit: goes on",
    warmup: "Warming up a new number, a few more each day: goes on",
    send_window: "Outside the sending hours of its recipients: goes on",
  };

  function waitingText(job) {
    const w = job.waiting;
    if (!w) return "";
    if (w.reason === "too_many_failures") {
      return "Paused by itself: too many of its last messages failed (numbers not on WhatsApp or " +
        "refused by the network). Check the list, then resume.";
    }
    return `${WAITING_WORDS[w.reason] || w.reason} at ${clock(w.until)}.`;
  }

  function etaText(job) {
    if (job.status === "completed") return job.finished_at ? `Finished at ${clock(job.finished_at)}` : "Finished";
    if (job.status === "stopped") return job.finished_at ? `Stopped at ${clock(job.finished_at)}` : "Stopped";
    const waiting = waitingText(job);
    if (job.status === "paused") return waiting || "Paused: nothing is sent until you resume.";
    if (job.status === "waiting_for_login") return "Goes on by itself once WhatsApp is logged in again.";
    if (job.status === "waiting_for_gateway") return "Goes on by itself once the SMS phone answers.";
    const left = job.eta_seconds ? `About ${duration(job.eta_seconds)} left` : "";
    return [waiting, left].filter(Boolean).join(" ");
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  /** Draw `job` (a status object) into `node`'s existing children; nothing is rebuilt. */
  function renderJob(node, job) {
    node.dataset.status = job.status;
    const status = node.querySelector(".job-status");
    setText(status, JOB_WORDS[job.status] || job.status);
    status.className = `badge job-status status-${job.status}`;
    const bar = node.querySelector(".job-bar");
    if (bar.value !== job.progress) bar.value = job.progress;
    const percent = `${Math.floor(job.progress * 100)}%`;
    setText(node.querySelector(".job-percent"), percent);
    bar.setAttribute("aria-valuetext", `${percent}, ${JOB_WORDS[job.status] || job.status}`);
    const finished = job.total - job.counts.pending - job.counts.retrying - job.counts.sending;
    setText(node.querySelector(".job-counts"),
            `${finished.toLocaleString()} of ${job.total.toLocaleString()} done · ${countsText(job)}`);
    setText(node.querySelector(".job-eta"), etaText(job));
    if (node.dataset.busy) return;
    for (const button of node.querySelectorAll("button[data-move]")) {
      button.hidden = !(moves[button.dataset.move] || []).includes(job.status);
      button.disabled = false;
    }
  }

  /** Pause / Resume / Stop buttons inside `node` act on the job `jobId()` names. */
  function bindMoves(node, jobId) {
    node.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-move]");
      if (!button || !node.contains(button)) return;
      const move = button.dataset.move;
      if (move === "stop" && !window.confirm("Stop this campaign? What is not sent yet is cancelled.")) return;
      node.dataset.busy = "1";
      for (const b of node.querySelectorAll("button[data-move]")) b.disabled = true;
      const result = await api("POST", `/${move}/${encodeURIComponent(jobId())}`);
      delete node.dataset.busy;
      show(node.querySelector(".job-error"), result.ok ? "" : problemText(result.problem));
      if (result.ok) renderJob(node, result.data);
      else for (const b of node.querySelectorAll("button[data-move]")) b.disabled = false;
    });
  }

  function updateBanners(jobs) {
    const statuses = new Set(jobs.map((j) => j.status));
    const login = document.getElementById("banner-login");
    const gateway = document.getElementById("banner-gateway");
    if (login) login.hidden = !statuses.has("waiting_for_login");
    if (gateway) gateway.hidden = !statuses.has("waiting_for_gateway");
  }

  // The banners follow the active jobs on every page; the campaigns page feeds them itself.
  if (document.body.dataset.view !== "campaigns") {
    poll(async () => {
      const result = await api("GET", "/jobs");
      if (result.ok) updateBanners(result.data.jobs);
    }, 5000);
  }

  return { api, poll, problemText, show, el, duration, clock, errorWords, renderJob, bindMoves,
           updateBanners, setText, MESSAGE_WORDS, JOB_WORDS };
})();
