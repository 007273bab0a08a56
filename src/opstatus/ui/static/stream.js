// An event stream read with fetch, since EventSource cannot send an Authorization header.
// It parses text/event-stream, reconnects after a drop (network, server restart, a stream
// the server ended, silence longer than the heartbeat allows) with a growing, jittered
// delay, and resumes with Last-Event-ID so that no event is missed or repeated.

import { authHeaders, errorOf, session, signedOut } from "./api.js";

const FIRST_DELAY = 500;
const MAX_DELAY = 15000;
// The server sends a heartbeat comment after 15 s of silence (--stream-heartbeat);
// nothing at all for this long means the connection is gone.
const IDLE_MS = 45000;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// Open ``url`` as a stream. ``onEvent({id, type, data})`` gets each event (data parsed);
// ``onState(state, detail)``: "connecting", "live", "reconnecting", "ended", "failed";
// ``ends(event)``: whether the stream ends after this event (an operation's terminal one).
// Returns stop().
export function openStream(url, { onEvent, onState = () => {}, ends = () => false, lastEventId = null }) {
  const stopper = new AbortController();
  let lastId = lastEventId;
  let finished = false;

  async function connect() {
    const attempt = new AbortController();
    const stop = () => attempt.abort();
    stopper.signal.addEventListener("abort", stop);
    let idle = null;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => attempt.abort(), IDLE_MS);
    };
    try {
      const headers = { Accept: "text/event-stream", ...authHeaders() };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      arm();
      const response = await fetch(url, {
        headers,
        credentials: "omit",
        cache: "no-store",
        signal: attempt.signal,
      });
      if (!response.ok) return await refused(response);
      onState("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let type = "";
      let data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        buffer += value;
        let start = 0;
        let end;
        while ((end = buffer.indexOf("\n", start)) >= 0) {
          let line = buffer.slice(start, end);
          start = end + 1;
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            if (data.length) {
              const event = { id: lastId, type: type || "message", data: JSON.parse(data.join("\n")) };
              data = [];
              type = "";
              onEvent(event);
              if (ends(event)) finished = true;
            }
            type = "";
            continue;
          }
          if (line.startsWith(":")) continue; // a comment: heartbeat, or why the stream ends
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "id" && !text.includes("\0")) lastId = text;
          else if (field === "event") type = text;
          else if (field === "data") data.push(text);
        }
        buffer = buffer.slice(start);
      }
      return finished ? "ended" : "retry";
    } catch (error) {
      if (stopper.signal.aborted) return "stopped";
      return "retry";
    } finally {
      clearTimeout(idle);
      stopper.signal.removeEventListener("abort", stop);
    }
  }

  let retryAfter = 0;

  async function refused(response) {
    const error = await errorOf(response);
    if (response.status === 401) {
      signedOut(error.message);
      return "stopped";
    }
    if (response.status === 429 || response.status >= 500) {
      retryAfter = 1000 * (Number(response.headers.get("Retry-After")) || 0);
      return "retry";
    }
    onState("failed", error);
    return "stopped";
  }

  (async () => {
    let failures = 0;
    onState("connecting");
    while (!stopper.signal.aborted && session.token) {
      const before = Date.now();
      const outcome = await connect();
      if (outcome === "ended") {
        onState("ended");
        return;
      }
      if (outcome === "stopped" || stopper.signal.aborted) return;
      // A connection that lasted a while was a good one: start the delays over.
      failures = Date.now() - before > 10000 ? 0 : failures + 1;
      const delay = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** Math.max(0, failures - 1));
      onState("reconnecting");
      await sleep(Math.max(retryAfter, delay * (0.5 + Math.random() / 2)), stopper.signal);
      retryAfter = 0;
    }
  })();

  return () => stopper.abort();
}
