// JSON calls to the review endpoints. POSTs carry the CSRF token from <meta name="csrf-token">.

export class NetworkError extends Error {
  constructor(cause) {
    super("The server could not be reached.");
    this.name = "NetworkError";
    this.cause = cause;
  }
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

async function readJSON(response) {
  const type = response.headers.get("content-type") || "";
  if (!type.includes("json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * POST a JSON body. Resolves to {ok, status, data} for any HTTP answer;
 * throws NetworkError when no answer came back (offline, server down).
 */
export async function postJSON(url, body, { keepalive = false, signal } = {}) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive,
      signal,
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
        "X-Requested-With": "fetch",
      },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new NetworkError(error);
  }
  const data = await readJSON(response);
  return { ok: response.ok, status: response.status, data, redirected: response.redirected };
}

export async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (error) {
    throw new NetworkError(error);
  }
  const data = await readJSON(response);
  return { ok: response.ok, status: response.status, data };
}

/** A short human message for a failed answer. */
export function answerMessage(answer, fallback = "The server refused the request.") {
  if (answer?.data?.message) return answer.data.message;
  if (answer?.status === 400) return "The page is out of date (security token). Reload the page; your work is kept in this browser.";
  if (answer?.status === 401 || answer?.redirected) return "You were signed out. Sign in again in another tab; your work is kept in this browser.";
  if (answer?.status === 403) return "You may not change this task.";
  if (answer?.status >= 500) return `The server had an error (${answer.status}).`;
  return fallback;
}
