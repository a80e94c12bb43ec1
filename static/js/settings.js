// The settings page: "Record" takes the next key combination pressed into its box, so a
// reviewer never has to know how a key is written. The server checks what is sent.
import { specOf } from "./keys.js";

let recording = null; // the one box waiting for keys: {button, stop}

for (const button of document.querySelectorAll(".record-key")) {
  const input = document.getElementById(button.dataset.for);
  const label = button.textContent;
  button.addEventListener("click", () => {
    const again = recording?.button === button;
    recording?.stop();
    if (again) return; // a second click on the same button stops recording
    button.textContent = "Press keys…";
    button.setAttribute("aria-pressed", "true");
    const take = (event) => {
      const spec = specOf(event);
      if (!spec) return; // a modifier on its own: wait for the key
      event.preventDefault();
      event.stopPropagation();
      input.value = spec;
      stop();
      input.focus();
    };
    const stop = () => {
      window.removeEventListener("keydown", take, true);
      button.textContent = label;
      button.removeAttribute("aria-pressed");
      recording = null;
    };
    window.addEventListener("keydown", take, true);
    recording = { button, stop };
  });
}
