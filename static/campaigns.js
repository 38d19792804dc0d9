// The campaigns view: every job with live progress, and the connection panel with the login
// QR code. Both are polled; existing nodes are updated in place so nothing flickers.
"use strict";

(() => {
  const list = document.getElementById("jobs");
  const template = document.getElementById("job-template");
  const nodes = new Map(); // job_id -> <li>
  const older = document.getElementById("jobs-older");
  const PAGE = 50; // campaigns shown at first, and added by each "Show older"
  let shown = PAGE;
  let jobNames = new Map();
  let waitingSince = new Map(); // job status -> earliest updated_at of jobs in it

  async function refreshJobs() {
    const result = await App.api("GET", `/jobs?all=1&limit=${shown}`);
    App.show(document.getElementById("jobs-error"), result.ok ? "" : App.problemText(result.problem));
    if (!result.ok) return;
    const { jobs, total } = result.data;
    // Older campaigns are not all shown; one still running among them must still raise its
    // banner and name itself in the connection panel.
    let active = jobs;
    if (total > jobs.length) {
      const all = await App.api("GET", "/jobs?limit=1000");
      if (all.ok) active = all.data.jobs;
    }
    App.updateBanners(active);
    jobNames = new Map([...jobs, ...active].map((j) => [j.job_id, j.name || j.job_id]));
    older.hidden = total <= jobs.length;
    App.setText(older, `Show older campaigns (${(total - jobs.length).toLocaleString()} more)`);
    waitingSince = new Map();
    for (const j of active) {
      const seen = waitingSince.get(j.status);
      if (!seen || j.updated_at < seen) waitingSince.set(j.status, j.updated_at);
    }
    document.getElementById("jobs-empty").hidden = jobs.length > 0;
    const wanted = new Set(jobs.map((j) => j.job_id));
    for (const [id, node] of nodes) {
      if (!wanted.has(id)) { node.remove(); nodes.delete(id); }
    }
    jobs.forEach((job, index) => {
      let node = nodes.get(job.job_id);
      if (!node) {
        node = template.content.firstElementChild.cloneNode(true);
        node.id = `job-${job.job_id}`;
        node.dataset.jobId = job.job_id;
        const link = node.querySelector(".job-name");
        link.href = `/app/jobs/${encodeURIComponent(job.job_id)}`;
        link.textContent = job.name || `Campaign ${job.job_id}`;
        App.bindMoves(node, () => job.job_id);
        nodes.set(job.job_id, node);
      }
      if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
      App.renderJob(node, job);
    });
    // Just started from "New campaign": point at it once it is drawn.
    const fresh = location.hash.startsWith("#job-") && document.getElementById(location.hash.slice(1));
    if (fresh && !fresh.classList.contains("fresh")) {
      fresh.classList.add("fresh");
      fresh.scrollIntoView({ block: "nearest" });
    }
  }

  older.addEventListener("click", () => { shown += PAGE; refreshJobs(); });

  // --- the connection panel ---------------------------------------------------------------

  const workerList = document.getElementById("workers");
  const workerNodes = new Map();
  const qrFigure = document.getElementById("qr");
  const qrImage = document.getElementById("qr-img");
  const STALE_AFTER = 60; // seconds, as the API's own "disconnected"

  function downSince(worker, state, jobStatus) {
    // The API says what state a worker is in, not since when: remember when this browser
    // first saw it, unless a job has been waiting on it since earlier.
    const key = `down:${worker.worker_id}:${state}`;
    let since = sessionStorage.getItem(key);
    if (!since) { since = new Date().toISOString(); sessionStorage.setItem(key, since); }
    const waiting = jobStatus && waitingSince.get(jobStatus);
    return App.clock(waiting && waiting < since ? waiting : since);
  }

  function forgetDown(worker) {
    for (const state of ["gateway_down", "disconnected"]) {
      sessionStorage.removeItem(`down:${worker.worker_id}:${state}`);
    }
  }

  function workerWords(worker, serverNow) {
    const age = (serverNow - Date.parse(worker.heartbeat_at)) / 1000;
    if (worker.state !== "stopped" && age > STALE_AFTER) {
      return `Worker not running (last heard from at ${App.clock(worker.heartbeat_at)})`;
    }
    if (!["gateway_down", "disconnected"].includes(worker.state)) forgetDown(worker);
    switch (worker.state) {
      case "qr_required":
        return "Scan the QR code with WhatsApp on your phone: Settings → Linked devices";
      case "sending": {
        const name = jobNames.get(worker.current_job_id);
        return name ? `Sending “${name}”` : "Sending";
      }
      case "logged_in":
        return worker.channel === "sms" ? "Phone reachable, idle" : "Logged in, idle";
      case "starting":
        return "Starting…";
      case "gateway_down":
        return `Phone unreachable since ${downSince(worker, "gateway_down", "waiting_for_gateway")}`;
      case "disconnected":
        return `WhatsApp Web unreachable since ${downSince(worker, "disconnected")}; retrying`;
      case "stopped":
        return "Worker not running";
      default:
        return worker.state;
    }
  }

  // A sender's caps and warm-up: "Day 3 of warm-up · 45 of 60 sent in 24 h · 12 of 60 this hour".
  const HELD_WORDS = { daily_cap: "daily limit reached", hourly_cap: "hourly limit reached",
                       warmup: "today's warm-up amount reached" };

  function limitsWords(limits) {
    if (!limits) return "";
    const parts = [];
    if (limits.warmup_day) parts.push(`Day ${limits.warmup_day} of warm-up`);
    parts.push(limits.daily_cap
      ? `${limits.sent_last_24h.toLocaleString()} of ${limits.daily_cap.toLocaleString()} sent in 24 h`
      : `${limits.sent_last_24h.toLocaleString()} sent in 24 h`);
    if (limits.hourly_cap) parts.push(`${limits.sent_last_hour} of ${limits.hourly_cap} in the last hour`);
    if (limits.waiting) {
      parts.push(`${HELD_WORDS[limits.waiting.reason] || limits.waiting.reason}, goes on at ${App.clock(limits.waiting.until)}`);
    }
    return parts.join(" · ");
  }

  async function refreshSession() {
    const result = await App.api("GET", "/session");
    if (!result.ok) return;
    // Workers that stopped cleanly (an old name, a finished run) are shown only when no
    // other worker runs: then "Worker not running" is the news.
    const all = result.data.workers;
    const live = all.filter((w) => w.state !== "stopped");
    const workers = live.length ? live : all;
    const serverNow = result.serverNow;
    document.getElementById("no-workers").hidden = workers.length > 0;
    const wanted = new Set(workers.map((w) => w.worker_id));
    for (const [id, node] of workerNodes) {
      if (!wanted.has(id)) { node.remove(); workerNodes.delete(id); }
    }
    for (const worker of workers) {
      let node = workerNodes.get(worker.worker_id);
      if (!node) {
        node = App.el("li", "worker");
        node.append(App.el("strong", "worker-channel", worker.channel === "sms" ? "SMS" : "WhatsApp"),
                    App.el("span", "worker-words"), App.el("small", "worker-id muted", worker.worker_id),
                    App.el("small", "worker-limits muted"));
        workerList.append(node);
        workerNodes.set(worker.worker_id, node);
      }
      node.className = `worker state-${worker.state}`;
      node.dataset.state = worker.state;
      App.setText(node.querySelector(".worker-words"), workerWords(worker, serverNow));
      App.setText(node.querySelector(".worker-limits"), limitsWords(worker.limits));
    }
    // One code at a time: the first account that needs a scan (a pool logs in one by one).
    const waiting = workers.find((w) => w.qr_available);
    await refreshQr(waiting ? waiting.worker_id : null);
  }

  async function refreshQr(workerId) {
    if (!workerId) { hideQr(); return; }
    // Fetched rather than pointed at, so the picture is swapped only when the code rotated
    // (no blink every poll); a data: URL is what the page's CSP allows for images.
    let response;
    try {
      response = await fetch(`/session/qr.png?worker_id=${encodeURIComponent(workerId)}&t=${Date.now()}`, { credentials: "same-origin",
                                                                  cache: "no-store" });
    } catch (error) { return; }
    if (!response.ok) { hideQr(); return; }
    const takenAt = response.headers.get("X-QR-Taken-At") || "";
    if (takenAt && takenAt === qrImage.dataset.takenAt && !qrFigure.hidden) return;
    const blob = await response.blob();
    const url = await new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.readAsDataURL(blob);
    });
    qrImage.src = url;
    qrImage.dataset.takenAt = takenAt;
    qrFigure.hidden = false;
  }

  function hideQr() {
    qrFigure.hidden = true;
    qrImage.removeAttribute("src");
    delete qrImage.dataset.takenAt;
  }

  // The connection panel names the job a worker sends: it starts once the jobs are known.
  let started = false;
  App.poll(async () => {
    await refreshJobs();
    if (!started) { started = true; App.poll(refreshSession, 2000); }
  }, 1500);
})();
