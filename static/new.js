// The new-campaign form: every change asks POST /preview what POST /send would queue (the
// parsed rows, the rejected ones, the first rendered messages, SMS parts, the duration), and
// Start sends the very same form data to POST /send. Nothing typed is lost on an error: the
// form is never reloaded, and each error is shown next to the field it is about.
"use strict";

(() => {
  const form = document.getElementById("campaign");
  const $ = (id) => document.getElementById(id);
  const fields = form.elements;
  const pacing = JSON.parse(form.dataset.pacing);
  const FIELD_SLOTS = { contacts: "file" }; // API field -> the input it is about
  const REASONS = {
    invalid_phone: "Not a valid phone number",
    duplicate: "Same number as an earlier row",
    empty_message: "The message would be empty",
    message_too_long: "The message would be too long",
    opted_out: "On the opt-out list: this person asked not to get messages",
  };
  let idempotencyKey = newKey();
  let previewSeq = 0;
  let previewing = false; // one preview at a time: a list of 100,000 takes seconds to read
  let previewAgain = false;
  let timer = null;
  let drawn = {};

  function newKey() {
    // crypto.randomUUID needs https or localhost; getRandomValues works on a LAN address too.
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function channel() { return fields.channel.value; }

  function hasRecipients() { return fields.file.files.length > 0 || fields.numbers.value.trim() !== ""; }

  function formData(message) {
    const data = new FormData(form);
    data.delete("csrf"); // sent as the X-CSRF-Token header
    if (message !== undefined) data.set("message", message);
    // The browser's local time, with its offset, as the API wants it (ISO 8601 in UTC).
    const at = $("send-at").value;
    if (at) {
      const when = new Date(at);
      data.set("send_at", Number.isNaN(when.getTime()) ? at : when.toISOString());
    }
    return data;
  }

  // --- errors next to their fields ---------------------------------------------------------

  function clearErrors() {
    for (const slot of form.querySelectorAll("[data-error-for]")) App.show(slot, "");
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    App.show($("form-error"), "");
    App.show($("preview-error"), "");
  }

  function slotFor(field) {
    const name = FIELD_SLOTS[field] || field;
    return name ? form.querySelector(`[data-error-for="${CSS.escape(name)}"]`) : null;
  }

  /** Each error next to its field; the rest (rows, the request) in the `fallback` node. */
  function showProblem(problem, fallback = $("form-error")) {
    const elsewhere = [];
    let first = null;
    const errors = problem.errors || [];
    // One field at fault: its slot gets the whole sentence (the detail often says more,
    // e.g. which {placeholders} there are); several: each its own short message.
    const oneField = errors.length > 0 && errors.every((e) => e.field && e.field === errors[0].field);
    for (const error of errors) {
      const name = FIELD_SLOTS[error.field] || error.field;
      const slot = slotFor(error.field);
      if (!slot) { elsewhere.push(error); continue; }
      const text = oneField ? problem.detail : error.message;
      if (slot.hidden) App.show(slot, text);
      else if (!slot.textContent.includes(text)) App.show(slot, `${slot.textContent} ${text}`);
      const input = fields[name];
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      first = first || slot;
    }
    if (!problem.errors || elsewhere.length) {
      App.show(fallback, App.problemText({ ...problem, errors: elsewhere }));
      first = first || fallback;
    }
    return first;
  }

  // --- the preview -------------------------------------------------------------------------

  function schedulePreview(delay) {
    clearTimeout(timer);
    timer = setTimeout(runPreview, delay);
  }

  async function askPreview(data) {
    return App.api("POST", "/preview", data);
  }

  /** Ask for a preview; while one is on its way, ask once more when it is back. */
  async function runPreview() {
    if (previewing) { previewAgain = true; return; }
    previewing = true;
    try {
      await previewOnce();
    } finally {
      previewing = false;
      if (previewAgain) { previewAgain = false; schedulePreview(0); }
    }
  }

  async function previewOnce() {
    const seq = ++previewSeq;
    if (!hasRecipients()) { $("preview").hidden = true; drawn = {}; drawEstimate(null); return; }
    let result = await askPreview(formData());
    if (seq !== previewSeq) return; // Start was pressed meanwhile
    clearErrors();
    let messageOk = true;
    if (!result.ok) {
      const errors = result.problem.errors || [];
      showProblem(result.problem, $("preview-error"));
      // Only the message is wrong (an unknown {placeholder}): still show the list.
      if (!(errors.length && errors.every((e) => e.field === "message"))) {
        // Keep what lets the user fix it in view: the reason, and the phone column choice.
        $("preview-body").hidden = true;
        App.show($("preview-summary"), "");
        $("rendered").hidden = true;
        drawEstimate(null);
        const canPick = fields.file.files.length > 0 && fields.phone_column.options.length > 0;
        $("phone-column-row").hidden = !canPick;
        $("preview").hidden = !(canPick || !errors.length || errors.some((e) => !slotFor(e.field)));
        return;
      }
      messageOk = false;
      result = await askPreview(formData(""));
      if (seq !== previewSeq || !result.ok) return;
    }
    drawPreview(result.data, messageOk);
  }

  function changed(key, value) {
    const text = JSON.stringify(value);
    if (drawn[key] === text) return false;
    drawn[key] = text;
    return true;
  }

  function drawPreview(p, messageOk) {
    $("preview").hidden = false;
    $("preview-body").hidden = false;
    let summary = `${p.total.toLocaleString()} recipient${p.total === 1 ? "" : "s"} will get it`;
    if (p.rejected_total) summary += `; ${p.rejected_total.toLocaleString()} row${p.rejected_total === 1 ? "" : "s"} set aside (see below)`;
    App.show($("preview-summary"), `${summary}.`);
    drawPhoneColumn(p);
    drawRows(p);
    drawRejected(p);
    drawPlaceholders(p.placeholders);
    drawRendered(messageOk ? p.previews : [], p.sms);
    drawEstimate(p);
  }

  function drawPhoneColumn(p) {
    const fromFile = fields.file.files.length > 0;
    $("phone-column-row").hidden = !fromFile;
    if (!fromFile) return;
    const select = fields.phone_column;
    const options = p.headers.map((header, i) => [p.columns[i], header || p.columns[i]]);
    if (changed("phoneColumns", options)) {
      select.replaceChildren(...options.map(([value, label]) => {
        const option = App.el("option", null, label);
        option.value = value;
        return option;
      }));
    }
    select.value = p.phone_column;
  }

  function drawRows(p) {
    App.setText($("rows-caption"), p.rows.length < p.total + p.rejected_total
      ? `The first ${p.rows.length} rows as read:` : "Every row as read:");
    if (!changed("rows", [p.columns, p.rows, p.phone_column])) return;
    const table = $("preview-rows");
    const head = App.el("tr");
    head.append(App.el("th", null, "Row"));
    p.columns.forEach((column, i) => {
      const th = App.el("th", column === p.phone_column ? "phone-col" : null,
                        p.headers[i] || column);
      head.append(th);
    });
    head.append(App.el("th", null, "Will it be sent?"));
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...p.rows.map((row) => {
      const tr = App.el("tr", row.status === "ok" ? null : "rejected");
      tr.append(App.el("td", "num", row.row));
      for (const column of p.columns) {
        tr.append(App.el("td", column === p.phone_column ? "phone-col" : null, row.values[column]));
      }
      tr.append(App.el("td", null, row.status === "ok" ? `Yes, to ${row.normalized}`
                                                      : `No: ${REASONS[row.status] || row.status}`));
      return tr;
    }));
  }

  function drawRejected(p) {
    $("rejected").hidden = !p.rejected_total;
    if (!changed("rejected", p.rejected)) return;
    App.setText($("rejected-summary"), `${p.rejected_total.toLocaleString()} row${p.rejected_total === 1 ? "" : "s"} will not be sent`);
    $("rejected-rows").tBodies[0].replaceChildren(...p.rejected.map((r) => {
      const tr = App.el("tr");
      tr.append(App.el("td", "num", r.row), App.el("td", null, r.phone),
                App.el("td", null, REASONS[r.reason] || r.reason));
      return tr;
    }));
    const more = p.rejected_total - p.rejected.length;
    App.show($("rejected-more"), more > 0 ? `…and ${more.toLocaleString()} more not listed here.` : "");
  }

  function drawPlaceholders(names) {
    $("placeholders").hidden = !names.length;
    if (!changed("placeholders", names)) return;
    $("placeholder-buttons").replaceChildren(...names.map((name) => {
      const button = App.el("button", "chip", `{${name}}`);
      button.type = "button";
      button.dataset.placeholder = name;
      return button;
    }));
  }

  function drawRendered(previews, sms) {
    $("rendered").hidden = !previews.length;
    const showSms = channel() !== "whatsapp" && sms;
    if (showSms) {
      const alphabet = sms.encoding === "gsm7" ? "plain GSM letters: 160 characters fit in one SMS, 153 per part above that"
        : "emoji or letters outside the GSM alphabet: 70 characters fit in one SMS, 67 per part above that";
      App.show($("sms-summary"), `SMS: the longest message is ${sms.characters} characters, ${sms.parts} part${sms.parts === 1 ? "" : "s"} (${alphabet}). ${sms.total_parts.toLocaleString()} parts in all.`);
    } else {
      App.show($("sms-summary"), "");
    }
    if (!changed("rendered", [previews, showSms])) return;
    $("rendered-list").replaceChildren(...previews.map((m) => {
      const li = App.el("li");
      const to = App.el("p", "to", m.name ? `To ${m.name} (${m.phone})` : `To ${m.phone}`);
      li.append(to, App.el("div", "bubble", m.text));
      if (showSms) {
        li.append(App.el("p", "muted", `${m.characters} characters · ${m.sms_parts} SMS part${m.sms_parts === 1 ? "" : "s"}`));
      }
      return li;
    }));
  }

  function drawEstimate(p) {
    App.setText($("pacing"), (p ? p.pacing : pacing[channel()]).summary);
    const count = p ? `${p.total.toLocaleString()} message${p.total === 1 ? "" : "s"}` : "";
    App.setText($("estimate"), p && p.total
      ? (p.estimate ? `Estimated time for ${count}: ${p.estimate}`
                    : `Estimated time: about ${App.duration(p.estimate_seconds)} for ${count}.`)
      : "");
    const many = p && p.variants > 1;
    App.show($("variants"), many
      ? `${p.variants.toLocaleString()} different texts: each person gets one, e.g. ` +
        p.variant_examples.map((t) => `“${t}”`).join(" / ")
      : "");
  }

  // --- what the user does ------------------------------------------------------------------

  form.addEventListener("input", (event) => {
    idempotencyKey = newKey(); // a changed form is a new campaign, not a retry
    if (event.target.name === "name") return;
    schedulePreview(event.target.type === "file" ? 0 : 350);
  });

  form.addEventListener("change", (event) => {
    idempotencyKey = newKey();
    const name = event.target.name;
    if (name === "file") {
      // A new file: let the server find its phone column again.
      fields.phone_column.replaceChildren();
      delete drawn.phoneColumns;
    }
    if (name === "channel") drawEstimate(null);
    if (["file", "attachment", "channel", "phone_column"].includes(name)) schedulePreview(0);
  });

  $("placeholder-buttons").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-placeholder]");
    if (!button) return;
    const box = fields.message;
    box.setRangeText(`{${button.dataset.placeholder}}`, box.selectionStart, box.selectionEnd, "end");
    box.focus();
    idempotencyKey = newKey();
    schedulePreview(0);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const start = $("start");
    if (start.disabled) return;
    clearTimeout(timer);
    previewSeq += 1; // a preview answering late must not redraw over the result
    previewAgain = false;
    clearErrors();
    start.disabled = true;
    App.setText(start, "Starting…");
    const result = await App.api("POST", "/send", formData(),
                                 { headers: { "Idempotency-Key": idempotencyKey } });
    if (result.ok) {
      window.location.assign(`/app#job-${encodeURIComponent(result.data.job_id)}`);
      return;
    }
    start.disabled = false;
    App.setText(start, "Start sending");
    const first = showProblem(result.problem);
    if (first) first.scrollIntoView({ block: "center" });
  });

  drawEstimate(null);
  if (hasRecipients()) schedulePreview(0); // a reload keeps typed fields in some browsers
})();
