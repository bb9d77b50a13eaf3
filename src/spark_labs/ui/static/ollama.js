// Talking to an Ollama-shaped API (/api/tags, /api/chat) from the page, and naming what went wrong.
//
// Requests go to the page's own origin: the spark-labs UI server relays /api/* to Ollama or to the
// gateway, so the page needs no CORS and its Content-Security-Policy can say connect-src 'self'.

export class ApiError extends Error {
  // kind: "auth" (401), "rate" (429), "busy" (503), "down" (engine unreachable), "http" (anything else)
  constructor(kind, status, message, retryAfter = null) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function headers(apiKey) {
  const h = { "Content-Type": "application/json" };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  return h;
}

async function errorFrom(response) {
  let detail = "";
  try {
    const body = await response.json();
    const error = body.error ?? body.detail ?? body;
    detail = typeof error === "string" ? error : (error.message ?? JSON.stringify(error));
  } catch {
    detail = response.statusText;
  }
  const retry = response.headers.get("Retry-After");
  const retryAfter = retry !== null && retry !== "" && !Number.isNaN(Number(retry)) ? Number(retry) : null;
  const kind = { 401: "auth", 429: "rate", 503: "busy", 502: "down", 504: "down" }[response.status] ?? "http";
  return new ApiError(kind, response.status, detail, retryAfter);
}

async function call(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("down", 0, `cannot reach the UI server (${error.message})`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function listModels(apiKey) {
  const response = await call("api/tags", { headers: headers(apiKey) });
  const body = await response.json();
  return (body.models ?? []).map((m) => m.name ?? m.model).filter((n) => typeof n === "string");
}

// Streams one chat answer. onLine(object, arrivedAtMs) gets every NDJSON object as soon as its line is
// complete. Resolves with the final (done) object; throws ApiError, or AbortError when signal aborts.
export async function streamChat(body, apiKey, signal, onLine) {
  const response = await call("api/chat", {
    method: "POST", headers: headers(apiKey), body: JSON.stringify({ ...body, stream: true }), signal,
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (error) {
      if (error.name === "AbortError" || signal.aborted) throw error;
      throw new ApiError("lost", 0, "the connection was lost mid-answer: the answer above is incomplete");
    }
    if (chunk.done) break;
    const arrived = performance.now();
    buffer += decoder.decode(chunk.value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (!line) continue;
      const event = JSON.parse(line);
      if (event.error) throw new ApiError("midstream", 200, `the engine failed mid-answer: ${event.error}`);
      onLine(event, arrived);
      if (event.done) return event;
    }
  }
  throw new ApiError("lost", 0, "the connection was lost mid-answer: the answer above is incomplete");
}
