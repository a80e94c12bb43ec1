// Live count of the samples a batch's filters match, before the batch is created.
const form = document.getElementById("batch-form");
const count = document.getElementById("match-count");
const audio = document.getElementById("match-audio");
let timer = null;

async function refresh() {
  const params = new URLSearchParams(new FormData(form));
  params.delete("csrf_token");
  const response = await fetch(`${form.dataset.countUrl}?${params}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const body = await response.json();
  count.textContent = String(body.count);
  audio.textContent = body.audio; // written by the server, as on the page
}

form.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(refresh, 250);
});
