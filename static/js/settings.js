// The settings page: "Record" takes the next key combination pressed into its box, so a
// reviewer never has to know how a key is written. The server checks what is sent.
import { specOf } from "./keys.js";

for (const button of document.querySelectorAll(".record-key")) {
  const input = document.getElementById(button.dataset.for);
  button.addEventListener("click", () => {
    const label = button.textContent;
    button.textContent = "Press keys…";
    button.setAttribute("aria-pressed", "true");
    const take = (event) => {
      const spec = specOf(event);
      if (!spec) return; // a modifier on its own: wait for the key
      event.preventDefault();
      event.stopPropagation();
      window.removeEventListener("keydown", take, true);
      input.value = spec;
      button.textContent = label;
      button.removeAttribute("aria-pressed");
      input.focus();
    };
    window.addEventListener("keydown", take, true);
  });
}
