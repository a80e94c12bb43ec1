// The Upload page: each chosen file is sent in parts (PUT, retried), then finished, which
// queues its ingest. The server says which parts it already has, so choosing the same file
// again after an interruption sends only the rest (ra_app/admin/uploads.py).
const form = document.getElementById("upload-form");
const input = document.getElementById("upload-files");
const list = document.getElementById("upload-list");
const status = document.getElementById("upload-status");
const token = document.querySelector('meta[name="csrf-token"]').content;
const headers = { "X-CSRFToken": token };

async function call(method, url, body, json = true) {
  const options = { method, credentials: "same-origin", headers: { ...headers } };
  if (body !== undefined) {
    options.body = json ? JSON.stringify(body) : body;
    options.headers["Content-Type"] = json ? "application/json" : "application/octet-stream";
  }
  const response = await fetch(url, options);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(answer.error || `the server answered ${response.status}`);
    error.retry = response.status >= 500 || response.status === 429;
    throw error;
  }
  return answer;
}

async function withRetries(attempt, tries = 5) {
  for (let i = 1; ; i += 1) {
    try {
      return await attempt();
    } catch (error) {
      const network = error instanceof TypeError; // fetch's "failed to fetch"
      if (i >= tries || !(network || error.retry)) throw error;
      await new Promise((done) => setTimeout(done, 1000 * 2 ** (i - 1)));
    }
  }
}

function row(file) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = file.size;
  bar.value = 0;
  bar.setAttribute("aria-label", `${file.name} sent`);
  const note = document.createElement("span");
  note.className = "muted";
  item.append(name, " ", bar, " ", note);
  list.append(item);
  return { item, bar, note };
}

async function send(file) {
  const { item, bar, note } = row(file);
  try {
    const begun = await withRetries(() =>
      call("POST", form.dataset.beginUrl, {
        name: file.name,
        size: file.size,
        modified: file.lastModified,
      }),
    );
    const base = `${form.dataset.beginUrl}/${begun.upload_id}`;
    if (!begun.finished) {
      const have = new Set(begun.received);
      let sent = have.size * begun.part_bytes;
      bar.value = Math.min(sent, file.size);
      if (have.size) note.textContent = `resuming: ${have.size} of ${begun.parts} parts here`;
      for (let n = 1; n <= begun.parts; n += 1) {
        if (have.has(n)) continue;
        const part = file.slice((n - 1) * begun.part_bytes, n * begun.part_bytes);
        await withRetries(() => call("PUT", `${base}/parts/${n}`, part, false));
        sent += part.size;
        bar.value = Math.min(sent, file.size);
      }
    }
    const done = begun.finished || (await withRetries(() => call("POST", `${base}/finish`)));
    bar.value = file.size;
    note.textContent = done.status === "queued" ? "queued for ingest" : done.status;
    item.dataset.state = "queued";
    return true;
  } catch (error) {
    note.textContent = `not sent: ${error.message}`;
    item.dataset.state = "failed";
    return false;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = [...input.files];
  if (!files.length) return;
  form.querySelector("button").disabled = true;
  status.textContent = `Sending ${files.length} file(s)…`;
  let queued = 0;
  for (const file of files) {
    if (await send(file)) queued += 1;
  }
  status.textContent = `${queued} of ${files.length} file(s) queued for ingest.`;
  form.querySelector("button").disabled = false;
  form.reset();
});
