// The reference front end of cmt-collect (API.md v1.1): a participant's one-time code is
// exchanged for a participant token, GET /v1/me shows what is due, the chosen questionnaire is
// rendered by LHC-Forms from our FHIR Questionnaire and sent back as a QuestionnaireResponse.
//
// Plain script, no build step. The only credential is the participant token, sent in
// Authorization (never a cookie, never a submitter key) and kept in this tab's sessionStorage.
// The API base URL comes from ?api= or the field on the page; the code from ?code= or the field.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const STORAGE = "cmt-collect.session"; // {api, token, trial_id, participant_id, expires_at}
  const SENT = "cmt-collect.sent"; // slots sent from this tab and not yet shown as done

  let session = null;
  let titles = {}; // instrument id -> title, from the public catalogue
  let openSlot = null; // {instrument, timepoint, idempotencyKey} of the form on the page

  // -- talking to the API -------------------------------------------------------------------

  /** A refusal, network failure or unreadable answer, in words a participant can act on. */
  class ApiError extends Error {
    constructor(title, lines, status) {
      super(title);
      this.title = title;
      this.lines = lines;
      this.status = status;
    }
  }

  function baseUrl(value) {
    const text = String(value || "").trim().replace(/\/+$/, "");
    try {
      const url = new URL(text);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
      return url.origin + url.pathname.replace(/\/+$/, "");
    } catch (e) {
      throw new ApiError("That study server address is not a web address.", [
        "It looks like http://127.0.0.1:8000 or https://api.example.org.",
      ]);
    }
  }

  async function call(method, path, { body, token, contentType, headers } = {}) {
    const api = session ? session.api : baseUrl($("api").value);
    const sent = { Accept: "application/json, application/fhir+json, application/problem+json" };
    if (token) sent.Authorization = "Bearer " + token;
    if (body !== undefined) sent["Content-Type"] = contentType || "application/json";
    Object.assign(sent, headers || {});
    let response;
    try {
      response = await fetch(api + path, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (e) {
      // a network failure and a CORS refusal look the same to a page (a TypeError)
      throw new ApiError("The study server could not be reached.", [
        "Check your connection and the server address (" + api + ").",
        "If the address is right, the server does not accept requests from this page (" +
          window.location.origin + "): the study team has to allow this page's origin.",
      ]);
    }
    if (response.status === 204) return null;
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!response.ok) throw refusal(response, data);
    return data;
  }

  /** problem+json (RFC 9457) or a FHIR OperationOutcome, as a title and one line per issue. */
  function refusal(response, data) {
    const status = response.status;
    const lines = [];
    let title;
    if (data && data.resourceType === "OperationOutcome") {
      title = statusTitle(status);
      for (const issue of data.issue || []) {
        const text = (issue.details && issue.details.text) || issue.diagnostics || issue.code;
        const where = (issue.expression || []).map(describeExpression).filter(Boolean);
        lines.push(where.length ? where.join(", ") + ": " + text : text);
      }
    } else if (data && typeof data.title === "string") {
      title = data.title;
      if (data.detail && data.detail !== data.title) lines.push(data.detail);
      for (const error of data.errors || []) {
        const where = (error.loc || []).filter((part) => part !== "body").join(" › ");
        lines.push(where ? where + ": " + error.msg : error.msg);
      }
    } else {
      title = statusTitle(status);
    }
    const retry = response.headers.get("Retry-After");
    if (status === 429 && retry) lines.push("Please try again in " + retry + " seconds.");
    if (status === 401) lines.push("If you were signed in, please start again with a new code.");
    return new ApiError(title, lines, status);
  }

  function statusTitle(status) {
    return (
      {
        401: "Not signed in, or the code does not work.",
        403: "This is not allowed with your sign-in.",
        404: "Not found.",
        409: "These answers were already sent.",
        413: "Too much to send at once.",
        422: "Some answers could not be accepted.",
        429: "Too many attempts.",
      }[status] || "The study server refused the request (HTTP " + status + ")."
    );
  }

  /** FHIRPath of an issue, as a participant reads it: "item 3", "the time of completion". */
  function describeExpression(expression) {
    const item = /item\.where\(linkId='([^']*)'\)/.exec(expression);
    if (item) return "question " + item[1];
    const position = /item\[(\d+)\]/.exec(expression);
    if (position) return "answer " + (Number(position[1]) + 1);
    const element = expression.replace(/^QuestionnaireResponse\.?/, "");
    return (
      { authored: "time of completion", questionnaire: "questionnaire", status: "status",
        "subject.identifier.value": "participant", item: "answers" }[element] || element
    );
  }

  // -- what the page shows ------------------------------------------------------------------

  function showProblem(error) {
    const box = $("problem");
    box.replaceChildren();
    const title = document.createElement("p");
    title.className = "problem-title";
    title.textContent = error instanceof ApiError ? error.title : "Something went wrong.";
    box.append(title);
    const lines = error instanceof ApiError ? error.lines : [String(error && error.message)];
    if (lines.length) {
      const list = document.createElement("ul");
      for (const line of lines) {
        const li = document.createElement("li");
        li.textContent = line;
        list.append(li);
      }
      box.append(list);
    }
    box.hidden = false;
    $("notice").hidden = true;
    box.scrollIntoView({ block: "nearest" });
  }

  function showNotice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
    $("problem").hidden = true;
  }

  function clearMessages() {
    $("problem").hidden = true;
    $("notice").hidden = true;
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute("aria-busy", String(on));
  }

  function when(iso) {
    return new Date(iso).toLocaleDateString(undefined, {
      weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC",
    });
  }

  function sentSlots() {
    try {
      return JSON.parse(sessionStorage.getItem(SENT) || "[]");
    } catch (e) {
      return [];
    }
  }

  function slotKey(slot) {
    return slot.instrument + "#" + slot.timepoint;
  }

  // -- sign in, schedule, form ---------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    clearMessages();
    const button = $("sign-in-button");
    busy(button, true);
    try {
      const api = baseUrl($("api").value);
      session = null;
      const code = $("code").value.trim();
      const issued = await fetchWith(api, "POST", "/v1/access/exchange", { body: { code } });
      session = {
        api,
        token: issued.participant_token,
        trial_id: issued.trial_id,
        participant_id: issued.participant_id,
        expires_at: issued.expires_at,
      };
      sessionStorage.setItem(STORAGE, JSON.stringify(session));
      sessionStorage.removeItem(SENT);
      $("code").value = "";
      forgetCodeInAddress();
      await showSchedule();
    } catch (error) {
      session = null;
      showProblem(error);
    } finally {
      busy(button, false);
    }
  }

  // before a session exists, `call` reads the address from the field: make it explicit
  async function fetchWith(api, method, path, options) {
    $("api").value = api;
    return call(method, path, options);
  }

  function forgetCodeInAddress() {
    const url = new URL(window.location.href);
    if (url.searchParams.has("code")) {
      url.searchParams.delete("code"); // a used code in the address bar only confuses a reload
      history.replaceState(null, "", url);
    }
  }

  async function loadTitles() {
    try {
      const catalogue = await call("GET", "/v1/instruments");
      titles = Object.fromEntries(catalogue.instruments.map((i) => [i.id, i.title]));
    } catch (e) {
      titles = {}; // the ids are shown instead
    }
  }

  async function showSchedule() {
    const [me] = await Promise.all([call("GET", "/v1/me", { token: session.token }), loadTitles()]);
    $("sign-in-section").hidden = true;
    $("form-section").hidden = true;
    $("schedule-section").hidden = false;
    $("trial-title").textContent = me.trial_title;
    $("participant-id").textContent = me.participant_id;
    $("participant-status").textContent = me.status;

    const sent = new Set(sentSlots());
    const due = $("due");
    due.replaceChildren();
    const rows = $("schedule").tBodies[0];
    rows.replaceChildren();
    for (const slot of me.schedule) {
      const name = titles[slot.instrument] || slot.instrument;
      const pending = slot.state === "due" && sent.has(slotKey(slot));
      const state = pending ? "sent" : slot.state;
      const row = rows.insertRow();
      for (const text of [name, slot.timepoint, when(slot.opens_at), when(slot.closes_at), state]) {
        row.insertCell().textContent = text;
      }
      row.dataset.slot = slotKey(slot);
      row.dataset.state = state;
      if (slot.state !== "due") continue;
      const li = document.createElement("li");
      li.dataset.slot = slotKey(slot);
      if (pending) {
        li.textContent = name + " (" + slot.timepoint + "): sent, thank you";
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = name + " (" + slot.timepoint + ")";
        button.dataset.instrument = slot.instrument;
        button.dataset.timepoint = slot.timepoint;
        button.addEventListener("click", () => openForm(slot, name, button));
        li.append(button, " until " + when(slot.closes_at));
      }
      due.append(li);
    }
    $("nothing-due").hidden = due.children.length > 0;
  }

  function newIdempotencyKey() {
    // crypto.getRandomValues also works outside secure contexts (randomUUID does not)
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "web-form-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function openForm(slot, name, button) {
    clearMessages();
    busy(button, true);
    try {
      const path =
        "/v1/me/questionnaires/" + encodeURIComponent(slot.instrument) +
        "?timepoint=" + encodeURIComponent(slot.timepoint);
      const questionnaire = await call("GET", path, { token: session.token });
      const container = $("formContainer");
      container.replaceChildren();
      $("form-heading").textContent = name + " (" + slot.timepoint + ")";
      $("schedule-section").hidden = true;
      $("form-section").hidden = false;
      // displayScoreWithAnswerText: false, or LHC-Forms prints each option's score beside
      // its label (docs/forms-and-fhir.md)
      await LForms.Util.addFormToPage(questionnaire, container, {
        fhirVersion: "R4",
        displayScoreWithAnswerText: false,
      });
      // a new key per opened form: a retry of the same send replays instead of storing twice
      openSlot = { ...slot, name, idempotencyKey: newIdempotencyKey() };
      container.dataset.loaded = slotKey(slot);
    } catch (error) {
      showProblem(error);
    } finally {
      busy(button, false);
    }
  }

  async function submitForm() {
    clearMessages();
    const button = $("submit-form");
    busy(button, true);
    try {
      const response = LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4", $("formContainer"));
      const accepted = await call(
        "POST",
        "/v1/trials/" + encodeURIComponent(session.trial_id) + "/fhir/QuestionnaireResponse",
        {
          body: response,
          token: session.token,
          contentType: "application/fhir+json",
          headers: { "Idempotency-Key": openSlot.idempotencyKey },
        }
      );
      const sent = sentSlots();
      sent.push(slotKey(openSlot));
      sessionStorage.setItem(SENT, JSON.stringify(sent));
      const name = openSlot.name;
      openSlot = null;
      $("formContainer").replaceChildren();
      delete $("formContainer").dataset.loaded;
      await showSchedule();
      showNotice("Thank you: your answers to " + name + " were received (" +
        accepted.submission_id + ").");
    } catch (error) {
      // Refused (nothing stored): corrected answers are a new body and need a new key. Not
      // answered (a network failure): keep the key, so sending again cannot store twice.
      if (error instanceof ApiError && error.status && openSlot) {
        openSlot.idempotencyKey = newIdempotencyKey();
      }
      showProblem(error);
    } finally {
      busy(button, false);
    }
  }

  async function signOut() {
    clearMessages();
    try {
      await call("DELETE", "/v1/me/token", { token: session.token });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        showProblem(error);
        return;
      }
    }
    session = null;
    sessionStorage.removeItem(STORAGE);
    sessionStorage.removeItem(SENT);
    $("schedule-section").hidden = true;
    $("form-section").hidden = true;
    $("sign-in-section").hidden = false;
    showNotice("You are signed out.");
  }

  async function start() {
    const params = new URLSearchParams(window.location.search);
    $("api").value = params.get("api") || "http://127.0.0.1:8000";
    if (params.get("code")) $("code").value = params.get("code");
    $("sign-in").addEventListener("submit", signIn);
    $("submit-form").addEventListener("click", submitForm);
    $("close-form").addEventListener("click", () => {
      openSlot = null;
      showSchedule().catch(showProblem);
    });
    $("sign-out").addEventListener("click", signOut);
    try {
      session = JSON.parse(sessionStorage.getItem(STORAGE) || "null");
    } catch (e) {
      session = null;
    }
    if (session) {
      try {
        await showSchedule();
      } catch (error) {
        session = null;
        sessionStorage.removeItem(STORAGE);
        showProblem(error);
      }
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
