// The chat page: settings, conversation, streaming answers, stop, stats and error states.
//
// Every string that comes from the server (answers, model names, error texts) reaches the page as text
// nodes or through renderMarkdown, which builds elements and never parses HTML. Measurements a test or
// the lab reads are written to data-* attributes of the answer's element.

import { renderMarkdown } from "./markdown.js";
import { ApiError, listModels, streamChat } from "./ollama.js";

const $ = (id) => document.getElementById(id);
const BUDGET_WARN = 0.8; // warn when the conversation fills this share of num_ctx

let history = []; // {role, content} as sent to /api/chat
let contextUsed = 0; // tokens the engine counted for the last exchange (prompt_eval_count + eval_count)
let controller = null; // the running answer's AbortController

function setStatus(text) {
  $("status").textContent = text;
}

function showAlert(kind, text) {
  const alert = $("alert");
  alert.dataset.kind = kind;
  alert.textContent = text;
  alert.hidden = false;
}

function clearAlert() {
  $("alert").hidden = true;
  $("alert").textContent = "";
  delete $("alert").dataset.kind;
}

function describe(error) {
  if (!(error instanceof ApiError)) return ["http", `Unexpected error: ${error.message}`];
  const retry = error.retryAfter !== null ? ` Retry in ${error.retryAfter} s.` : "";
  switch (error.kind) {
    case "auth":
      return ["auth", `The server needs an API key (401): ${error.message}. Enter it in the API key field.`];
    case "rate":
      return ["rate", `Rate limited (429): ${error.message}.${retry || " Wait a moment and retry."}`];
    case "busy":
      return ["busy", `The engine is unavailable (503): ${error.message}.${retry || " Retry shortly."}`];
    case "down":
      return ["down", `Engine down: ${error.message}`];
    case "lost":
    case "midstream":
      return [error.kind, error.message];
    default:
      return ["http", `HTTP ${error.status}: ${error.message}`];
  }
}

function fail(error) {
  const [kind, text] = describe(error);
  showAlert(kind, text);
  setStatus(kind === "auth" ? "API key needed" : "Not connected");
  document.body.dataset.state = kind;
  if (kind === "auth") $("api-key").focus();
}

async function loadModels() {
  setStatus("Loading models…");
  try {
    const names = await listModels($("api-key").value);
    $("model").replaceChildren(...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      return option;
    }));
    $("model").disabled = names.length === 0;
    if (names.length === 0) {
      showAlert("empty", "The engine lists no models (/api/tags is empty): load or pull one, then Reload models.");
    } else {
      clearAlert();
    }
    setStatus(`Connected: ${names.length} model${names.length === 1 ? "" : "s"}`);
    document.body.dataset.state = "ready";
  } catch (error) {
    fail(error);
  }
}

function addMessage(role, label) {
  const item = document.createElement("li");
  item.className = `message ${role}`;
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = label;
  const body = document.createElement("div");
  body.className = "body";
  const stats = document.createElement("p");
  stats.className = "stats";
  item.append(who, body, stats);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function ms(ns) {
  return `${Math.round((ns ?? 0) / 1e6)} ms`;
}

function showStats(item, final) {
  const evalS = (final.eval_duration ?? 0) / 1e9;
  const tokS = evalS > 0 ? final.eval_count / evalS : null;
  item.dataset.evalCount = final.eval_count ?? "";
  item.dataset.tokS = tokS === null ? "" : tokS.toFixed(2);
  item.dataset.serverTtftMs = (((final.load_duration ?? 0) + (final.prompt_eval_duration ?? 0)) / 1e6).toFixed(1);
  const parts = [`${final.eval_count ?? "?"} tokens`, tokS === null ? "tok/s n/a" : `${tokS.toFixed(1)} tok/s`,
    `prompt ${final.prompt_eval_count ?? "?"} tokens in ${ms(final.prompt_eval_duration)}`,
    `load ${ms(final.load_duration)}`, `first token on screen ${item.dataset.ttftRenderMs} ms`,
    `(first byte ${item.dataset.ttftApiMs} ms)`];
  item.querySelector(".stats").textContent = parts.join(" · ");
}

function updateBudget() {
  const numCtx = Number($("num-ctx").value) || 2048;
  const pending = Math.ceil($("prompt").value.length / 4); // rough: ~4 characters per token
  const used = contextUsed + pending;
  const share = used / numCtx;
  const budget = $("budget");
  budget.dataset.level = share >= 1 ? "full" : share >= BUDGET_WARN ? "warn" : "ok";
  budget.textContent = share >= BUDGET_WARN
    ? `Context: ${used} of ${numCtx} tokens (${Math.round(share * 100)} %). The engine will drop or cut the `
      + "oldest messages: start a New chat or raise num_ctx."
    : `Context: ${used} of ${numCtx} tokens`;
}

function setBusy(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
  document.body.dataset.busy = on ? "yes" : "no";
}

async function send() {
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  if (!$("model").value) {
    showAlert("nomodel", "No model to ask: the model list is empty or failed to load (see the status above).");
    return;
  }
  clearAlert();
  const model = $("model").value;
  history.push({ role: "user", content: text });
  addMessage("user", "You").querySelector(".body").textContent = text;
  $("prompt").value = "";
  const item = addMessage("assistant", model);
  item.dataset.state = "streaming";
  const bodyEl = item.querySelector(".body");
  const system = $("system").value.trim();
  const request = {
    model,
    messages: [...(system ? [{ role: "system", content: system }] : []), ...history],
    options: { temperature: Number($("temperature").value), num_ctx: Number($("num-ctx").value) },
  };
  if ($("num-predict").value) request.options.num_predict = Number($("num-predict").value);
  let answer = "";
  let frame = 0;
  let renders = 0;
  const started = performance.now();
  const render = () => {
    frame = 0;
    bodyEl.replaceChildren(renderMarkdown(answer));
    $("messages").scrollTop = $("messages").scrollHeight; // keep the growing answer in view
    renders += 1;
    item.dataset.renders = renders;
    item.dataset.chars = answer.length;
    if (renders === 1) item.dataset.ttftRenderMs = (performance.now() - started).toFixed(1);
  };
  controller = new AbortController();
  setBusy(true);
  setStatus("Answering…");
  try {
    const final = await streamChat(request, $("api-key").value, controller.signal, (event, arrived) => {
      const piece = event.message?.content ?? "";
      if (!piece) return;
      if (!answer) item.dataset.ttftApiMs = (arrived - started).toFixed(1);
      answer += piece;
      if (!frame) frame = requestAnimationFrame(render); // at most one re-render per painted frame
    });
    if (frame) cancelAnimationFrame(frame);
    render();
    history.push({ role: "assistant", content: answer });
    contextUsed = Math.max((final.prompt_eval_count ?? 0) + (final.eval_count ?? 0),
      Math.ceil(history.reduce((n, m) => n + m.content.length, 0) / 4));
    showStats(item, final);
    item.dataset.state = "done";
    setStatus("Ready");
  } catch (error) {
    if (frame) cancelAnimationFrame(frame);
    if (answer) render();
    if (error.name === "AbortError") {
      item.dataset.state = "stopped";
      item.querySelector(".stats").textContent = "Stopped: the server was told to stop generating.";
      history.push({ role: "assistant", content: answer });
      setStatus("Stopped");
    } else {
      item.dataset.state = "error";
      history.pop(); // the question was not answered: put it back in the box to retry
      $("prompt").value = text;
      fail(error);
    }
  } finally {
    controller = null;
    setBusy(false);
    updateBudget();
  }
}

function newChat() {
  if (controller) controller.abort();
  history = [];
  contextUsed = 0;
  $("messages").replaceChildren();
  clearAlert();
  updateBudget();
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
$("prompt").addEventListener("input", updateBudget);
$("num-ctx").addEventListener("input", updateBudget);
$("stop").addEventListener("click", () => controller?.abort());
$("new-chat").addEventListener("click", newChat);
$("reload-models").addEventListener("click", loadModels);
$("api-key").addEventListener("change", loadModels);
setBusy(false);
updateBudget();
loadModels();
